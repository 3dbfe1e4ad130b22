import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { createValidator, requireToken, type Validator, type ValidatorOptions } from '../src/kits/validator/index.ts';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';
import { introspectionRequests, startServer, type TestServer } from './helpers/server.ts';

type Mode = 'reference' | 'jwt' | 'stateless';
const MODES: Mode[] = ['reference', 'jwt', 'stateless'];
const REDIS_SKIP = 'redis-server not installed (apt-get install redis-server)';

let server: TestServer;
let redis: TestRedis | undefined;
let resourceServer: { client_id: string; client_secret: string };
let onFeed: Validator;
let onRedis: Validator | undefined;
const closers: (() => Promise<unknown>)[] = [];

/** A validator for this API (audience: the issuer, the default audience), closed at the end. */
function validator(extra: Partial<ValidatorOptions> = {}): Validator {
  const created = createValidator({
    issuer: server.url,
    audience: server.url,
    clientId: resourceServer.client_id,
    clientSecret: resourceServer.client_secret,
    cacheTtlSeconds: 300,
    ...extra,
  });
  closers.push(() => created.close());
  return created;
}

before(async () => {
  redis = await startRedis();
  if (!redis) console.log(`# ${REDIS_SKIP}: the Redis validator is not tested`);
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ...(redis ? { REDIS_URL: redis.url } : {}) } });
  // It introspects other clients' tokens for the issuer's default audience.
  resourceServer = (
    await admin(server, 'POST', '/clients', {
      client_name: 'orders API',
      grant_types: ['client_credentials'],
      response_types: [],
      introspection_audiences: [server.url],
    })
  ).body;
  onFeed = validator();
  if (redis) onRedis = validator({ redisUrl: redis.url });
  await sleep(500); // both validators connect to their revocation feeds
});
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await server?.stop();
  await redis?.stop();
});

const validators = () => [onFeed, ...(onRedis ? [onRedis] : [])];

async function session(mode: Mode) {
  const client = await registerClient(server, mode);
  const user = await registerUser(server);
  const config = await discover(server, client);
  const tokens = await codeFlow(config, user, 'openid offline_access api:read');
  return { client, user, config, tokens };
}

/** An API guarded by requireToken(onFeed); its URL. */
async function guardedApi(guard: Validator): Promise<string> {
  const app = express();
  app.get('/orders', requireToken(guard), (_req, res) => void res.json({ ok: true }));
  const api: Server = createServer(app);
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  closers.push(async () => api.close());
  return `http://127.0.0.1:${(api.address() as { port: number }).port}/orders`;
}

describe('a required audience', () => {
  test('createValidator without audience (or with an empty list) → a TypeError naming `audience`', () => {
    const base = { issuer: 'http://127.0.0.1:9', clientId: 'x', clientSecret: 'y' };
    for (const audience of [undefined, [], '', [''], [42]]) {
      assert.throws(
        () => createValidator({ ...base, audience } as unknown as ValidatorOptions),
        (error: Error) => error instanceof TypeError && /`audience`/.test(error.message),
        JSON.stringify(audience),
      );
    }
  });

  test('every mode: a token for this API passes, one minted for the issuer is refused by a validator for another API; a list accepts any of its values', async () => {
    const elsewhere = validator({ audience: 'https://api-b.example.com' });
    const either = validator({ audience: ['https://api-b.example.com', server.url] });
    const elsewhereShared = redis ? validator({ audience: 'https://api-b.example.com', redisUrl: redis.url }) : undefined;
    for (const mode of MODES) {
      const { tokens } = await session(mode);
      for (const v of validators()) assert.equal((await v.validate(tokens.access_token)).active, true, `${mode}: for this API`);
      assert.deepEqual(await elsewhere.validate(tokens.access_token), { active: false }, `${mode}: another API's validator`);
      if (elsewhereShared) assert.deepEqual(await elsewhereShared.validate(tokens.access_token), { active: false }, `${mode}: another API's, on Redis`);
      assert.equal((await either.validate(tokens.access_token)).active, true, `${mode}: one of the listed audiences`);
    }
  });
});

describe('only access tokens pass', () => {
  test('every mode: a refresh token and an ID token sent as Bearer → inactive, and 401 from requireToken', async () => {
    const url = await guardedApi(onFeed);
    for (const mode of MODES) {
      const { tokens } = await session(mode);
      assert.ok(tokens.refresh_token && tokens.id_token, `${mode}: a refresh token and an ID token`);
      for (const [index, v] of validators().entries()) {
        const which = `${mode}, ${index === 0 ? 'feed' : 'redis'} validator`;
        assert.equal((await v.validate(tokens.access_token)).active, true, `${which}: the access token`);
        assert.deepEqual(await v.validate(tokens.refresh_token!), { active: false }, `${which}: the refresh token`);
        assert.deepEqual(await v.validate(tokens.id_token!), { active: false }, `${which}: the ID token`);
      }
      for (const [name, token] of [
        ['refresh token', tokens.refresh_token!],
        ['ID token', tokens.id_token!],
      ]) {
        const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 401, `${mode}: ${name}`);
        assert.match(response.headers.get('www-authenticate')!, /error="invalid_token"/);
      }
      assert.equal((await fetch(url, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200, `${mode}: the access token`);
    }
  });
});

describe('a grant revocation reaches cached results', () => {
  for (const mode of MODES) {
    test(`${mode}: refresh-token reuse revokes the grant → the rotated tokens inactive within 2 s (feed and Redis)`, async () => {
      const { config, tokens } = await session(mode);
      const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      for (const v of validators()) {
        assert.equal((await v.validate(rotated.access_token)).active, true);
        assert.equal((await v.validate(rotated.access_token)).active, true, 'now from the cache');
        assert.equal((await v.validate(rotated.refresh_token!)).active, false, 'a refresh token is never an access token');
      }
      await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), 'the old refresh token replayed');
      const started = Date.now();
      for (const [index, v] of validators().entries()) {
        while ((await v.validate(rotated.access_token)).active) {
          assert.ok(Date.now() - started < 2000, `${index === 0 ? 'feed' : 'redis'} validator still accepts the rotated access token after 2 s`);
          await sleep(25);
        }
        assert.equal((await v.validate(rotated.refresh_token!)).active, false);
      }
    });
  }
});

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

describe('a hostile writer on the shared Redis', () => {
  test('an altered entry, an invented one (scope admin) and one replayed under another key: ignored, counted, validation still right', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const hostile = new Redis(redis.url);
    closers.push(async () => hostile.disconnect());
    const issuing = await registerClient(server, 'reference', { grant_types: ['client_credentials'], response_types: [], redirect_uris: undefined });
    const token = (await oidc.clientCredentialsGrant(await discover(server, issuing), { scope: 'api:read' })).access_token;
    assert.equal((await onRedis!.validate(token)).active, true);
    const [key] = await hostile.keys(`tally:validator:*:e:${sha256(token)}`);
    assert.ok(key, 'the result is shared in Redis');
    const prefix = key.slice(0, key.length - sha256(token).length);

    // Altered: scope admin, and stored "now" (in the future) to outlast the 2-second bound.
    const entry = JSON.parse((await hostile.get(key))!);
    await hostile.set(key, JSON.stringify({ ...entry, storedAt: Date.now() + 3600_000, result: { ...entry.result, scope: 'admin' } }), 'PX', 60_000);
    const reader = validator({ redisUrl: redis.url });
    await sleep(300);
    const checked = await reader.validate(token);
    assert.equal(checked.active, true, 'the token itself is still good');
    assert.equal(checked.scope, 'api:read', 'not the altered scope');
    assert.equal(reader.stats().rejectedCacheEntries, 1);

    // Invented: a made-up token, active with scope admin, with and without a MAC.
    const now = Date.now();
    const madeUp = randomBytes(32).toString('base64url');
    const invented = {
      result: {
        active: true,
        scope: 'admin',
        sub: 'intruder',
        client_id: issuing.client_id,
        token_type: 'Bearer',
        aud: server.url,
        exp: Math.floor(now / 1000) + 3600,
      },
      storedAt: now,
      expiresAt: now + 60_000,
      tags: [],
    };
    await hostile.set(`${prefix}${sha256(madeUp)}`, JSON.stringify(invented), 'PX', 60_000);
    assert.deepEqual(await reader.validate(madeUp), { active: false }, 'an invented entry without a MAC');
    const madeUp2 = randomBytes(32).toString('base64url');
    await hostile.set(`${prefix}${sha256(madeUp2)}`, JSON.stringify({ ...invented, mac: entry.mac }), 'PX', 60_000);
    assert.deepEqual(await reader.validate(madeUp2), { active: false }, 'an invented entry with a borrowed MAC');
    assert.equal(reader.stats().rejectedCacheEntries, 3);

    // Replayed: the authentic entry of the good token (written again by `reader`), under a made-up token's key.
    const authentic = (await hostile.get(key))!;
    assert.ok(!authentic.includes('admin'), 'the altered entry was replaced by an authentic one');
    const replayed = randomBytes(32).toString('base64url');
    await hostile.set(`${prefix}${sha256(replayed)}`, authentic, 'PX', 60_000);
    assert.deepEqual(await reader.validate(replayed), { active: false }, "another key's entry");
    assert.equal(reader.stats().rejectedCacheEntries, 4);

    // Replayed in time: the authentic entry, saved before the token's revocation, written back after it.
    const saved = (await hostile.get(key))!;
    await oidc.tokenRevocation(await discover(server, issuing), token);
    const revokedAt = Date.now();
    while ((await reader.validate(token)).active) {
      assert.ok(Date.now() - revokedAt < 2000, 'revoked within 2 s');
      await sleep(25);
    }
    await hostile.set(key, saved, 'PX', 60_000);
    assert.deepEqual(await reader.validate(token), { active: false }, 'an authentic entry from before the revocation');

    // An authentic entry is still used: a third validator takes it without asking the issuer.
    const other = (await oidc.clientCredentialsGrant(await discover(server, issuing), { scope: 'api:read' })).access_token;
    assert.equal((await reader.validate(other)).active, true);
    const third = validator({ redisUrl: redis.url });
    await sleep(300);
    const introspections = await introspectionRequests(server);
    assert.equal((await third.validate(other)).scope, 'api:read');
    assert.equal(await introspectionRequests(server), introspections, 'taken from the shared entry');
    assert.equal(third.stats().rejectedCacheEntries, 0);
  });
});

describe('a fake issuer: endpoints pinned to its origin, introspection answers judged', () => {
  /** A fake issuer whose discovery document puts `foreign` endpoints on another origin (localhost vs 127.0.0.1). */
  async function fakeIssuer(foreign?: 'jwks_uri' | 'introspection_endpoint', introspection: Record<string, unknown> = { active: false }) {
    const hits: string[] = [];
    const fake = createServer((req, res) => {
      hits.push(req.url!);
      if (req.url === '/token/introspection') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(introspection));
        return;
      }
      if (req.url === '/.well-known/openid-configuration') {
        const own = `http://127.0.0.1:${port}`;
        const other = `http://localhost:${port}`;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            issuer: own,
            token_endpoint: `${own}/token`,
            introspection_endpoint: `${foreign === 'introspection_endpoint' ? other : own}/token/introspection`,
            jwks_uri: `${foreign === 'jwks_uri' ? other : own}/jwks`,
          }),
        );
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as { port: number }).port;
    closers.push(async () => fake.close());
    return { issuer: `http://127.0.0.1:${port}`, foreignOrigin: `http://localhost:${port}`, hits };
  }

  for (const foreign of ['jwks_uri', 'introspection_endpoint'] as const) {
    test(`a ${foreign} on another origin: ready() rejects naming it, validate answers inactive and never calls it; allowedEndpointOrigins lets it through`, async () => {
      const fake = await fakeIssuer(foreign);
      const options = { issuer: fake.issuer, audience: 'https://api.example.com', clientId: 'rs', clientSecret: 'secret' };
      const refusing = createValidator(options);
      closers.push(() => refusing.close());
      await assert.rejects(refusing.ready(), (error: Error) => error.name === 'UntrustedEndpointError' && error.message.includes(foreign));
      const jwtShaped = `${Buffer.from('{"alg":"ES256","typ":"at+jwt"}').toString('base64url')}.e30.c2ln`;
      assert.deepEqual(await refusing.validate(jwtShaped), { active: false });
      assert.deepEqual(await refusing.validate('A'.repeat(43)), { active: false });
      assert.deepEqual(
        fake.hits.filter((path) => path === '/jwks' || path === '/token/introspection'),
        [],
        'the foreign endpoints were never called',
      );
      const allowing = createValidator({ ...options, allowedEndpointOrigins: [fake.foreignOrigin] });
      closers.push(() => allowing.close());
      await allowing.ready();
    });
  }

  test('an introspection answer is an access token only with token_type Bearer or DPoP (any case)', async () => {
    const audience = 'https://api.example.com';
    for (const [tokenType, active] of [
      [undefined, false],
      [null, false],
      ['refresh_token', false],
      ['N_A', false],
      ['Bearer', true],
      ['bearer', true],
      ['DPoP', 'bound'],
      ['dpop', 'bound'],
    ] as const) {
      const fake = await fakeIssuer(undefined, { active: true, aud: audience, sub: 'someone', client_id: 'c', scope: 'api:read', token_type: tokenType });
      const v = createValidator({ issuer: fake.issuer, audience, clientId: 'rs', clientSecret: 'secret' });
      closers.push(() => v.close());
      const checked = await v.check('A'.repeat(43));
      // A DPoP token is an access token, refused here only for want of its proof (test/validator-dpop.test.ts).
      if (active === 'bound') assert.match(String(checked.refusal?.description), /DPoP-bound/, `token_type ${tokenType}`);
      else assert.equal(checked.result.active, active, `token_type ${tokenType}`);
    }
  });
});
