import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Redis } from 'ioredis';
import { SignJWT, UnsecuredJWT, decodeJwt, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { createValidator, requireToken, type Validator } from '../src/kits/validator/index.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { REDIRECT_URI } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startRedis } from './helpers/redis.ts';
import { introspectionRequests, startServer, type TestServer } from './helpers/server.ts';
import { insertRows } from './helpers/db.ts';
import { sha256 } from '../src/lib/crypto.ts';

type Mode = 'reference' | 'jwt' | 'stateless';
const MODES: Mode[] = ['reference', 'jwt', 'stateless'];

let server: TestServer;
let redis: Awaited<ReturnType<typeof startRedis>>;
let resourceServer: { client_id: string; client_secret: string };
let onFeed: Validator;
let onRedis: Validator | undefined;
let counter = 0;

before(async () => {
  redis = await startRedis();
  if (!redis) console.log('# redis-server not installed: the Redis validator is not tested (apt-get install redis-server)');
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ...(redis ? { REDIS_URL: redis.url } : {}) } });
  resourceServer = (
    await admin(server, 'POST', '/clients', {
      client_name: 'orders API',
      grant_types: ['client_credentials'],
      response_types: [],
      introspection_audiences: [server.url],
    })
  ).body;
  onFeed = createValidator({
    issuer: server.url,
    audience: server.url,
    clientId: resourceServer.client_id,
    clientSecret: resourceServer.client_secret,
    cacheTtlSeconds: 300,
  });
  if (redis)
    onRedis = createValidator({
      issuer: server.url,
      audience: server.url,
      clientId: resourceServer.client_id,
      clientSecret: resourceServer.client_secret,
      cacheTtlSeconds: 300,
      redisUrl: redis.url,
    });
  await sleep(500); // let both validators connect to their revocation feeds
});
after(async () => {
  await onFeed?.close();
  await onRedis?.close();
  await server?.stop();
  await redis?.stop();
});

async function newClient(mode: Mode) {
  const answer = await admin(server, 'POST', '/clients', {
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    scope: 'openid offline_access api:read',
    token_mode: mode,
  });
  assert.equal(answer.status, 201);
  return answer.body;
}

async function session(mode: Mode, scope = 'openid offline_access api:read') {
  const client = await newClient(mode);
  const username = `v${process.pid}x${++counter}`;
  const user = {
    id: (await admin(server, 'POST', '/users', { username, password: 'a long password' })).body.id as string,
    username,
    password: 'a long password',
  };
  const config = await discover(server, client);
  const tokens = await codeFlow(config, user, scope);
  return { client, user, config, tokens };
}

const validators = () => [onFeed, ...(onRedis ? [onRedis] : [])];

describe('validating tokens', () => {
  test('valid tokens of all three modes → active, with sub, client_id, scope, exp', async () => {
    for (const mode of MODES) {
      const { user, client, tokens, config } = await session(mode);
      const service = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      for (const validator of validators()) {
        const result = await validator.validate(tokens.access_token);
        assert.equal(result.active, true, `${mode} user token`);
        assert.equal(result.sub, user.id);
        assert.equal(result.client_id, client.client_id);
        assert.match(String(result.scope), /api:read/);
        assert.equal(typeof result.exp, 'number');
        const own = await validator.validate(service.access_token);
        assert.equal(own.active, true, `${mode} client credentials token`);
        assert.equal(own.sub, client.client_id);
      }
    }
  });

  test('forged, malformed, wrong-audience and alg:none tokens → inactive, never a throw', async () => {
    const { tokens } = await session('jwt');
    const [header, payload, signature] = tokens.access_token.split('.');
    const flipped = `${header}.${payload}.${signature!.slice(0, -4)}${signature!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    const { privateKey } = await generateKeyPair('ES256');
    const claims = decodeJwt(tokens.access_token);
    const ownKey = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'not-the-servers' }).sign(privateKey);
    const unsigned = new UnsecuredJWT({ ...claims }).encode();
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${signature}`;
    for (const validator of validators()) {
      for (const [name, bad] of Object.entries({
        flipped,
        ownKey,
        unsigned,
        tampered,
        empty: '',
        junk: 'abc',
        dots: 'a.b.c',
        huge: 'x'.repeat(20_000),
        spaces: 'a b',
        unknownReference: 'A'.repeat(43),
      })) {
        assert.deepEqual(await validator.validate(bad), { active: false }, name);
      }
    }
    const otherAudience = createValidator({
      issuer: server.url,
      clientId: resourceServer.client_id,
      clientSecret: resourceServer.client_secret,
      audience: 'https://other.example.com',
    });
    try {
      assert.equal((await otherAudience.validate(tokens.access_token)).active, false, 'JWT for another audience');
      const reference = await session('reference');
      assert.equal((await otherAudience.validate(reference.tokens.access_token)).active, false, 'reference token for another audience');
    } finally {
      await otherAudience.close();
    }
    if (!redis) return;
    // Validators sharing one Redis share results only when they check alike.
    const fresh = await session('jwt');
    const audience = String(decodeJwt(fresh.tokens.access_token).aud);
    const shared = (extra: { audience: string }) =>
      createValidator({ issuer: server.url, clientId: resourceServer.client_id, clientSecret: resourceServer.client_secret, redisUrl: redis!.url, ...extra });
    const [elsewhere, here] = [shared({ audience: 'https://other.example.com' }), shared({ audience })];
    try {
      await sleep(500);
      assert.equal((await elsewhere.validate(fresh.tokens.access_token)).active, false, 'refused for another audience');
      assert.equal((await here.validate(fresh.tokens.access_token)).active, true, "not the other validator's refusal");
      assert.equal((await onRedis!.validate(fresh.tokens.access_token)).active, true);
      const later = await session('jwt');
      assert.equal((await here.validate(later.tokens.access_token)).active, true);
      assert.equal((await elsewhere.validate(later.tokens.access_token)).active, false, "not the other validator's acceptance");
    } finally {
      await elsewhere.close();
      await here.close();
    }
  });

  test('expired tokens and tokens of another issuer → inactive', async () => {
    const other = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ACCESS_TOKEN_TTL: '4' } });
    try {
      const rs = (await admin(other, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], introspection_audiences: [other.url] }))
        .body;
      // Created (and its discovery read) before the 4-second tokens are issued, so that a slow machine
      // does not spend their lifetime on it.
      const otherValidator = createValidator({ issuer: other.url, audience: other.url, clientId: rs.client_id, clientSecret: rs.client_secret });
      try {
        await otherValidator.ready();
        const clients = [];
        for (const mode of MODES)
          clients.push(
            (await admin(other, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read', token_mode: mode })).body,
          );
        const configs = await Promise.all(clients.map((client) => discover(other, client)));
        const issued: string[] = [];
        for (const config of configs) issued.push((await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token);
        for (const token of issued) assert.equal((await otherValidator.validate(token)).active, true, 'fresh at its own issuer');
        for (const token of issued) assert.equal((await onFeed.validate(token)).active, false, 'another issuer’s token');
        await sleep(4100);
        for (const token of issued) assert.equal((await otherValidator.validate(token)).active, false, 'expired');
      } finally {
        await otherValidator.close();
      }
    } finally {
      await other.stop();
    }
  });

  test('requireToken → 401 invalid_token, 403 insufficient_scope, or req.token (RFC 6750)', async () => {
    const app = express();
    app.get('/orders', requireToken(onFeed, { scopes: ['api:read'] }), (req, res) => {
      res.json({ sub: (req as unknown as { token: { sub: string } }).token.sub });
    });
    const api: Server = createServer(app);
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(api.address() as { port: number }).port}/orders`;
    try {
      const missing = await fetch(url);
      assert.equal(missing.status, 401);
      assert.match(missing.headers.get('www-authenticate')!, /^Bearer .*error="invalid_token"/);
      const bad = await fetch(url, { headers: { authorization: 'Bearer not-a-token' } });
      assert.equal(bad.status, 401);
      assert.match(bad.headers.get('www-authenticate')!, /error="invalid_token"/);
      const narrow = await session('jwt', 'openid offline_access');
      const forbidden = await fetch(url, { headers: { authorization: `Bearer ${narrow.tokens.access_token}` } });
      assert.equal(forbidden.status, 403);
      assert.match(forbidden.headers.get('www-authenticate')!, /error="insufficient_scope", scope="api:read"/);
      for (const mode of MODES) {
        const good = await session(mode);
        const ok = await fetch(url, { headers: { authorization: `Bearer ${good.tokens.access_token}` } });
        assert.equal(ok.status, 200, mode);
        assert.deepEqual(await ok.json(), { sub: good.user.id });
      }
      // RFC 6750 2.1: one or more spaces after the scheme, which is case-insensitive.
      const spaced = await session('reference');
      for (const header of [`Bearer  ${spaced.tokens.access_token}`, `bearer ${spaced.tokens.access_token}`]) {
        assert.equal((await fetch(url, { headers: { authorization: header } })).status, 200, JSON.stringify(header.slice(0, 8)));
      }
    } finally {
      api.close();
    }
  });

  test('the cache: 1,000 validations of one reference token → one introspection request', async () => {
    const { tokens } = await session('reference');
    const before = await introspectionRequests(server);
    await Promise.all(Array.from({ length: 500 }, () => onFeed.validate(tokens.access_token)));
    for (let i = 0; i < 500; i++) assert.equal((await onFeed.validate(tokens.access_token)).active, true);
    assert.equal((await introspectionRequests(server)) - before, 1);
  });
});

describe('revocation reaches validators within 2 seconds, whatever their cache TTL (300 s)', () => {
  type Session = Awaited<ReturnType<typeof session>>;
  const sources: [string, Mode[], (s: Session) => Promise<unknown>][] = [
    ['the revocation endpoint', MODES, (s) => oidc.tokenRevocation(s.config, s.tokens.access_token)],
    [
      'a single ledger entry',
      ['reference', 'jwt'],
      async (s) => {
        const entries = (await admin(server, 'GET', `/tokens?subject=${s.user.id}&type=access_token`)).body.items;
        for (const entry of entries) await admin(server, 'POST', `/tokens/${entry.id}/revoke`);
      },
    ],
    ['a grant revocation', MODES, async (s) => admin(server, 'POST', '/revocations', { grant_id: decodeGrant(s) })],
    ['a subject revocation', MODES, (s) => admin(server, 'POST', '/revocations', { subject: s.user.id })],
    ['a client revocation', MODES, (s) => admin(server, 'POST', '/revocations', { client_id: s.client.client_id })],
    ['deleting the user', MODES, (s) => admin(server, 'DELETE', `/users/${s.user.id}`)],
    ['deleting the client', MODES, (s) => admin(server, 'DELETE', `/clients/${s.client.client_id}`)],
  ];
  const grants = new Map<string, string>();
  const decodeGrant = (s: Session) => grants.get(s.tokens.access_token)!;

  for (const [name, modes, revoke] of sources) {
    for (const mode of modes) {
      test(`${name}, ${mode} token`, async () => {
        const s = await session(mode);
        const introspected = await oidc.tokenIntrospection(s.config, s.tokens.access_token);
        grants.set(s.tokens.access_token, String(introspected.grant_id));
        for (const validator of validators()) {
          assert.equal((await validator.validate(s.tokens.access_token)).active, true);
          assert.equal((await validator.validate(s.tokens.access_token)).active, true, 'now from the cache');
        }
        await revoke(s);
        const started = Date.now();
        for (const [index, validator] of validators().entries()) {
          while ((await validator.validate(s.tokens.access_token)).active) {
            assert.ok(Date.now() - started < 2000, `${index === 0 ? 'feed' : 'redis'} validator still accepts the token after 2 s`);
            await sleep(25);
          }
        }
        assert.ok(Date.now() - started < 2000);
      });
    }
  }
});

describe('a validator started after a revocation knows it (it reads the backlog before trusting local checks)', () => {
  test('on the feed, and with Redis on an emptied Redis: the revoked JWT refused, another accepted, both without introspection', async () => {
    const revoked = await session('jwt');
    const kept = await session('jwt');
    await admin(server, 'POST', '/revocations', { subject: revoked.user.id });
    for (const validator of validators()) {
      while ((await validator.validate(revoked.tokens.access_token)).active) await sleep(25);
    }
    if (redis) {
      // What the running Redis validator recorded there is gone: a new one has only the server to learn from.
      const flusher = new Redis(redis.url);
      await flusher.flushall();
      flusher.disconnect();
    }
    const options = {
      issuer: server.url,
      audience: server.url,
      clientId: resourceServer.client_id,
      clientSecret: resourceServer.client_secret,
      cacheTtlSeconds: 300,
    };
    const fresh = [createValidator(options), ...(redis ? [createValidator({ ...options, redisUrl: redis.url })] : [])];
    try {
      await sleep(1000); // connected, and the backlog read
      for (const [index, validator] of fresh.entries()) {
        const introspections = await introspectionRequests(server);
        assert.equal(
          (await validator.validate(revoked.tokens.access_token)).active,
          false,
          `${index === 0 ? 'feed' : 'redis'} validator refuses the token revoked before it started`,
        );
        assert.equal((await validator.validate(kept.tokens.access_token)).active, true);
        assert.equal(await introspectionRequests(server), introspections, 'decided locally, from the revocations it read');
      }
    } finally {
      for (const validator of fresh) await validator.close();
    }
  });
});

describe('a revocation heard while a result is being worked out is not lost', () => {
  test('an introspection answered "active" just before the revocation, arriving after it: refused within 2 s (feed and Redis)', async () => {
    const realFetch = globalThis.fetch;
    let delayIntrospection = false;
    // The answer of introspection travels slowly: the server says "active", then the token is revoked
    // while that answer is still on its way.
    globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      const response = await realFetch(input, init);
      if (delayIntrospection && String(input).endsWith('/token/introspection')) await sleep(500);
      return response;
    }) as typeof fetch;
    try {
      for (const [index, validator] of validators().entries()) {
        const s = await session('reference');
        delayIntrospection = true;
        const inFlight = validator.validate(s.tokens.access_token);
        await sleep(150);
        await oidc.tokenRevocation(s.config, s.tokens.access_token);
        const revokedAt = Date.now();
        await inFlight;
        delayIntrospection = false;
        while ((await validator.validate(s.tokens.access_token)).active) {
          assert.ok(Date.now() - revokedAt < 2000, `${index === 0 ? 'feed' : 'redis'} validator still accepts the token 2 s after its revocation`);
          await sleep(25);
        }
      }
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});

describe('a revocation Redis did not carry', () => {
  test('in the server feed only (its publication on Redis failed): the Redis validator learns it within seconds', async (t) => {
    if (!onRedis) return t.skip('redis-server not installed (apt-get install redis-server)');
    const s = await session('jwt');
    assert.equal((await onRedis.validate(s.tokens.access_token)).active, true);
    const jti = String(decodeJwt(s.tokens.access_token).jti);
    // What the server records before publishing; here it is never published.
    await insertRows(
      server,
      'revocation_feed',
      ['event', 'created_at'],
      [[JSON.stringify({ type: 'token', jti_hash: sha256(jti), revoked_at: new Date().toISOString() }), new Date()]],
    );
    const started = Date.now();
    while ((await onRedis.validate(s.tokens.access_token)).active) {
      assert.ok(Date.now() - started < 8000, 'the Redis validator still accepts the token 8 s later');
      await sleep(100);
    }
  });
});
