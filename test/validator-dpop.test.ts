import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { createTokenClient } from '../src/kits/client/index.ts';
import { createValidator, requireToken, type RequireTokenOptions, type Validator } from '../src/kits/validator/index.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { discover } from './helpers/oauth.ts';
import { startRedis } from './helpers/redis.ts';
import { startServer, type TestServer } from './helpers/server.ts';

type Mode = 'reference' | 'jwt' | 'stateless';
type KeyPair = { privateKey: CryptoKey; publicKey: CryptoKey };

let server: TestServer;
let redis: Awaited<ReturnType<typeof startRedis>>;
let resourceServer: { client_id: string; client_secret: string };
/** Two validators of one API (on one Redis when redis-server is installed), each behind its own Express app. */
let first: Validator;
let second: Validator;
let firstUrl: string;
let secondUrl: string;
const apis: Server[] = [];

function newValidator() {
  return createValidator({
    issuer: server.url,
    audience: server.url,
    clientId: resourceServer.client_id,
    clientSecret: resourceServer.client_secret,
    cacheTtlSeconds: 300,
    ...(redis ? { redisUrl: redis.url } : {}),
  });
}

/** An Express app answering GET/POST /orders with the token's claims, behind requireToken; its /orders URL. */
async function serve(validator: Validator, options: RequireTokenOptions = {}): Promise<string> {
  const app = express();
  app.all('/orders', requireToken(validator, { scopes: ['api:read'], ...options }), (req, res) => {
    res.json((req as unknown as { token: unknown }).token);
  });
  const api = createServer(app);
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apis.push(api);
  return `http://127.0.0.1:${(api.address() as { port: number }).port}/orders`;
}

before(async () => {
  redis = await startRedis();
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ...(redis ? { REDIS_URL: redis.url } : {}) } });
  resourceServer = (
    await admin(server, 'POST', '/clients', {
      client_name: 'orders API',
      grant_types: ['client_credentials'],
      response_types: [],
      introspection_audiences: [server.url],
    })
  ).body;
  first = newValidator();
  second = newValidator();
  firstUrl = await serve(first);
  secondUrl = await serve(second);
  await sleep(500); // let the validators connect to their revocation feeds
});
after(async () => {
  for (const api of apis) api.close();
  await first?.close();
  await second?.close();
  await server?.stop();
  await redis?.stop();
});

const keyPair = (alg = 'ES256') => generateKeyPair(alg, { extractable: true }) as Promise<KeyPair>;
/** RFC 9449 `ath`: base64url(SHA-256(the access token)). */
const createHashB64 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** A DPoP-bound client-credentials token of a client in `mode`, obtained with openid-client's DPoP support. */
async function boundToken(mode: Mode, key?: KeyPair) {
  const client = (
    await admin(server, 'POST', '/clients', {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api:read',
      token_mode: mode,
    })
  ).body;
  const config = await discover(server, client);
  const keys = key ?? (await keyPair());
  const dpop = oidc.getDPoPHandle(config, keys);
  const tokens = await oidc.clientCredentialsGrant(config, { scope: 'api:read' }, { DPoP: dpop });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop', `${mode}: a DPoP token`);
  return { config, keys, dpop, token: tokens.access_token, client };
}

/** A hand-made proof (RFC 9449 §4.2); `claims` and `header` override the good values. */
async function proof(
  keys: KeyPair,
  request: { method: string; url: string; token: string },
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  alg = 'ES256',
) {
  return new SignJWT({ htm: request.method, htu: request.url, jti: randomUUID(), ath: createHashB64(request.token), ...claims })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey), ...header })
    .setIssuedAt(typeof claims.iat === 'number' ? claims.iat : Math.floor(Date.now() / 1000))
    .sign(keys.privateKey);
}

async function call(url: string, token: string, dpopProof?: string, method = 'GET', scheme = 'DPoP') {
  const headers: Record<string, string> = { authorization: `${scheme} ${token}` };
  if (dpopProof !== undefined) headers.dpop = dpopProof;
  return fetch(url, { method, headers });
}

/** Asserts a 401 with the DPoP challenge carrying `error` (and the Bearer challenge beside it). */
async function refusedWith(response: Response, error: string, what: string) {
  assert.equal(response.status, 401, what);
  const challenge = response.headers.get('www-authenticate') ?? '';
  assert.match(challenge, new RegExp(`DPoP realm="tally", algs="ES256 EdDSA Ed25519 RS256 PS256", error="${error}"`), `${what}: ${challenge}`);
  assert.match(challenge, /^Bearer realm="tally"(, |$)/, `${what}: the Bearer challenge too`);
  assert.equal(((await response.json()) as { error: string }).error, error, what);
}

const MODES: Mode[] = ['jwt', 'reference', 'stateless'];

describe('DPoP-bound tokens at requireToken (RFC 9449 §7)', () => {
  for (const mode of MODES) {
    test(`${mode}: a good proof from openid-client passes, on both validators, with cnf.jkt in req.token`, async () => {
      const { config, keys, dpop, token } = await boundToken(mode);
      const jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey), 'sha256');
      for (const url of [firstUrl, `${secondUrl}?page=2#top`]) {
        const response = await oidc.fetchProtectedResource(config, token, new URL(url), 'GET', undefined, undefined, { DPoP: dpop });
        assert.equal(response.status, 200, `${mode} ${url}`);
        const claims = (await response.json()) as { active: boolean; token_type: string; cnf: { jkt: string } };
        assert.equal(claims.active, true);
        assert.equal(claims.cnf.jkt, jkt);
        assert.equal(claims.token_type, 'DPoP');
      }
      const post = await call(firstUrl, token, await proof(keys, { method: 'POST', url: firstUrl, token }), 'POST');
      assert.equal(post.status, 200, 'POST with a POST proof');
    });

    test(`${mode}: missing proof, wrong htm, wrong htu, old or future iat, wrong ath, bad typ, symmetric alg, private jwk → invalid_dpop_proof`, async () => {
      const { keys, token } = await boundToken(mode);
      const request = { method: 'GET', url: firstUrl, token };
      const now = Math.floor(Date.now() / 1000);
      const other = await keyPair();
      const privateJwk = await exportJWK(keys.privateKey);
      const cases: Record<string, string | undefined> = {
        missing: undefined,
        empty: '',
        two: `${await proof(keys, request)}, ${await proof(keys, request)}`,
        htm: await proof(keys, request, { htm: 'POST' }),
        htu: await proof(keys, request, { htu: secondUrl }),
        htuPath: await proof(keys, request, { htu: `${firstUrl}/other` }),
        oldIat: await proof(keys, request, { iat: now - 120 }),
        futureIat: await proof(keys, request, { iat: now + 120 }),
        ath: await proof(keys, request, { ath: createHashB64(`${token}x`) }),
        noAth: await proof(keys, request, { ath: undefined }),
        typ: await proof(keys, request, {}, { typ: 'JWT' }),
        privateJwk: await proof(keys, request, {}, { jwk: privateJwk }),
        signedByAnother: await proof(other, request, {}, { jwk: await exportJWK(keys.publicKey) }),
        hs256: await new SignJWT({ htm: 'GET', htu: firstUrl, jti: randomUUID(), ath: createHashB64(token) })
          .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0' } as never })
          .setIssuedAt()
          .sign(new TextEncoder().encode('secretsecretsecretsecretsecret!!')),
      };
      for (const [name, bad] of Object.entries(cases)) await refusedWith(await call(firstUrl, token, bad), 'invalid_dpop_proof', `${mode} ${name}`);
      // The same token with a good proof still passes: nothing above spoiled it.
      assert.equal((await call(firstUrl, token, await proof(keys, request))).status, 200);
    });

    test(`${mode}: a proof by another key → invalid_token; the bound token as Bearer → invalid_token`, async () => {
      const { keys, token } = await boundToken(mode);
      const request = { method: 'GET', url: firstUrl, token };
      assert.equal((await call(firstUrl, token, await proof(keys, request))).status, 200, 'cached with its binding now');
      const thief = await keyPair();
      await refusedWith(await call(firstUrl, token, await proof(thief, request)), 'invalid_token', `${mode} another key`);
      const asBearer = await call(firstUrl, token, undefined, 'GET', 'Bearer');
      assert.equal(asBearer.status, 401);
      const challenge = asBearer.headers.get('www-authenticate')!;
      assert.match(challenge, /^Bearer realm="tally", error="invalid_token", error_description="the access token is DPoP-bound/);
      assert.match(challenge, /DPoP realm="tally", algs="[^"]+"$/);
      // ...even with a valid proof beside it.
      assert.equal((await call(firstUrl, token, await proof(keys, request), 'GET', 'Bearer')).status, 401);
    });

    test(`${mode}: a replayed proof → invalid_dpop_proof, on the same validator and on another sharing Redis`, async () => {
      const { keys, token } = await boundToken(mode);
      const once = await proof(keys, { method: 'GET', url: firstUrl, token });
      assert.equal((await call(firstUrl, token, once)).status, 200);
      await refusedWith(await call(firstUrl, token, once), 'invalid_dpop_proof', `${mode} replay on the same validator`);
      if (!redis) return;
      // The second app is on another origin: the proof names it, with a jti the first already saw.
      const jti = randomUUID();
      assert.equal((await call(firstUrl, token, await proof(keys, { method: 'GET', url: firstUrl, token }, { jti }))).status, 200);
      const replayed = await proof(keys, { method: 'GET', url: secondUrl, token }, { jti });
      await refusedWith(await call(secondUrl, token, replayed), 'invalid_dpop_proof', `${mode} replay on the other validator`);
      // And the other way round: a jti used at the second validator first is refused at the first.
      const other = randomUUID();
      assert.equal((await call(secondUrl, token, await proof(keys, { method: 'GET', url: secondUrl, token }, { jti: other }))).status, 200);
      await refusedWith(
        await call(firstUrl, token, await proof(keys, { method: 'GET', url: firstUrl, token }, { jti: other })),
        'invalid_dpop_proof',
        `${mode} replay back on the first`,
      );
    });
  }

  test('an unbound token with the DPoP scheme → invalid_token; as Bearer it passes', async () => {
    const client = (
      await admin(server, 'POST', '/clients', {
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read',
        token_mode: 'jwt',
      })
    ).body;
    const { access_token: token } = await oidc.clientCredentialsGrant(await discover(server, client), { scope: 'api:read' });
    const keys = await keyPair();
    await refusedWith(await call(firstUrl, token, await proof(keys, { method: 'GET', url: firstUrl, token })), 'invalid_token', 'unbound as DPoP');
    assert.equal((await call(firstUrl, token, undefined, 'GET', 'Bearer')).status, 200);
  });

  test('no credentials → both challenges, invalid_token on Bearer; requireDpop → only the DPoP challenge', async () => {
    const missing = await fetch(firstUrl);
    assert.equal(missing.status, 401);
    assert.deepEqual(missing.headers.get('www-authenticate')!.split(/, (?=Bearer|DPoP)/), [
      'Bearer realm="tally", error="invalid_token", error_description="a bearer or DPoP access token is required"',
      'DPoP realm="tally", algs="ES256 EdDSA Ed25519 RS256 PS256"',
    ]);
    const strict = await serve(first, { requireDpop: true });
    const client = (
      await admin(server, 'POST', '/clients', {
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read',
        token_mode: 'reference',
      })
    ).body;
    const { access_token: token } = await oidc.clientCredentialsGrant(await discover(server, client), { scope: 'api:read' });
    const bearer = await call(strict, token, undefined, 'GET', 'Bearer');
    assert.equal(bearer.status, 401);
    assert.match(bearer.headers.get('www-authenticate')!, /^DPoP realm="tally", algs="[^"]+", error="invalid_token"/);
  });

  test('insufficient scope with the DPoP scheme → 403 with the DPoP challenge', async () => {
    const narrow = await serve(first, { scopes: ['api:write'] });
    const { keys, token } = await boundToken('jwt');
    const response = await call(narrow, token, await proof(keys, { method: 'GET', url: narrow, token }));
    assert.equal(response.status, 403);
    assert.match(response.headers.get('www-authenticate')!, /DPoP realm="tally", algs="[^"]+", error="insufficient_scope", scope="api:write"/);
  });

  test('publicOrigin: htu is the URL the client saw at the proxy, not the one the app listens on', async () => {
    const behindProxy = await serve(first, { publicOrigin: 'https://api.example.com' });
    const path = new URL(behindProxy).pathname;
    const { keys, token } = await boundToken('reference');
    const outside = `https://api.example.com${path}`;
    assert.equal((await call(behindProxy, token, await proof(keys, { method: 'GET', url: outside, token }))).status, 200);
    await refusedWith(await call(behindProxy, token, await proof(keys, { method: 'GET', url: behindProxy, token })), 'invalid_dpop_proof', 'inside URL');
  });

  // Tally's server binds tokens to ES256 and Ed25519 keys only (oidc-provider's default
  // dPoPSigningAlgValues); the RS256 and PS256 proofs the validator also takes have no token to go with.
  test('Ed25519 proofs pass, under both alg names', async () => {
    for (const alg of ['Ed25519', 'EdDSA']) {
      const keys = await keyPair('Ed25519');
      const { token } = await boundToken('jwt', keys);
      const response = await call(firstUrl, token, await proof(keys, { method: 'GET', url: firstUrl, token }, {}, {}, alg));
      assert.equal(response.status, 200, alg);
    }
  });
});

describe('the client kit against requireToken', () => {
  test('createTokenClient({ dpop }).fetch → 200 on both validators, with ES256 and EdDSA keys, a fresh proof per call', async () => {
    for (const [mode, dpop] of [
      ['jwt', true],
      ['reference', { alg: 'EdDSA' as const }],
    ] as const) {
      const client = (
        await admin(server, 'POST', '/clients', {
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
          scope: 'api:read',
          token_mode: mode,
        })
      ).body;
      const worker = createTokenClient({ issuer: server.url, clientId: client.client_id, clientSecret: client.client_secret, scope: 'api:read', dpop });
      try {
        for (const url of [firstUrl, secondUrl, `${firstUrl}?again=1`]) {
          const response = await worker.fetch(url);
          assert.equal(response.status, 200, `${mode} ${url}`);
          assert.equal(((await response.json()) as { token_type: string }).token_type, 'DPoP');
        }
        assert.equal((await call(firstUrl, await worker.getToken(), undefined, 'GET', 'Bearer')).status, 401, 'its token alone, as Bearer');
      } finally {
        await worker.close();
      }
    }
  });
});

describe('validate(token, presentation): the programmatic API', () => {
  test('a bound token: inactive alone or as Bearer, active with its proof; check() names the reason', async () => {
    for (const mode of ['jwt', 'reference'] as Mode[]) {
      const { keys, token } = await boundToken(mode);
      const request = { method: 'GET', url: 'https://api.example.com/orders?x=1', token };
      assert.deepEqual(await first.validate(token), { active: false }, `${mode} alone`);
      const checked = await first.check(token);
      assert.equal(checked.refusal?.error, 'invalid_token');
      const good = await first.validate(token, { dpop: { ...request, proof: await proof(keys, { ...request, url: 'https://api.example.com/orders' }) } });
      assert.equal(good.active, true, `${mode} with a proof`);
      assert.equal(good.token_type, 'DPoP');
      assert.equal(typeof (good.cnf as { jkt: string }).jkt, 'string');
      // The cached result keeps the binding: alone again, still refused.
      assert.deepEqual(await first.validate(token), { active: false }, `${mode} alone after a cached success`);
      const bad = await first.check(token, { dpop: { ...request, proof: await proof(keys, request, { htm: 'PUT' }) } });
      assert.deepEqual(bad, { result: { active: false }, refusal: { error: 'invalid_dpop_proof', description: 'the DPoP proof is for another HTTP method' } });
    }
  });
});
