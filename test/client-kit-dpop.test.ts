import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, importJWK, type JWK, jwtVerify } from 'jose';
import { generateDpopKey } from '../src/kits/client/dpop.ts';
import { createTokenClient, TokenRequestError, type TokenClientOptions } from '../src/kits/client/index.ts';
import { deriveEntryKey, sealEntry, unsealEntry } from '../src/kits/shared/entry-keys.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';
import { freePort, root, startServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let redis: TestRedis | undefined;
const closers: (() => Promise<unknown>)[] = [];
const REDIS_SKIP = 'redis-server not installed: apt-get install redis-server (as .ci/run does)';

before(async () => {
  [server, redis] = await Promise.all([startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } }), startRedis()]);
});
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await Promise.all([server?.stop(), redis?.stop()]);
});

interface Worker {
  client_id: string;
  client_secret: string;
}

async function newWorker(on: TestServer, extra: Record<string, unknown> = {}): Promise<Worker> {
  const answer = await admin(on, 'POST', '/clients', {
    client_name: 'dpop worker',
    redirect_uris: [],
    grant_types: ['client_credentials'],
    response_types: [],
    scope: 'api:read',
    ...extra,
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

function tokenClient(on: { url: string }, worker: Worker, extra: Partial<TokenClientOptions> = {}) {
  const client = createTokenClient({ issuer: on.url, clientId: worker.client_id, clientSecret: worker.client_secret, scope: 'api:read', dpop: true, ...extra });
  closers.push(() => client.close());
  return client;
}

async function introspect(on: TestServer, worker: Worker, token: string): Promise<{ active: boolean; [claim: string]: any }> {
  const response = await fetch(`${on.url}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${worker.client_id}:${worker.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
  return (await response.json()) as { active: boolean };
}

/** Every request the server answered at its token endpoint, from GET /metrics. */
async function tokenRequests(on: TestServer): Promise<number> {
  const text = await (await fetch(`${on.url}/metrics`)).text();
  return [...text.matchAll(/^tally_http_requests_total\{route="token",status="\d+"\} (\d+)$/gm)].reduce((sum, [, n]) => sum + Number(n), 0);
}

async function tokenRequestCounter(on: TestServer) {
  const start = await tokenRequests(on);
  return async () => {
    await sleep(50); // the server counts a request when its response has finished
    return (await tokenRequests(on)) - start;
  };
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** The thumbprint of the key that signed a proof (the jwk in its header). */
const thumbprintOf = async (proof: string) => calculateJwkThumbprint(decodeProtectedHeader(proof).jwk as JWK);

interface ProofCall {
  method: string;
  url: string;
  authorization: string | undefined;
  body: string;
  token: string | undefined;
  /** The proof's payload, once its signature checked out with the header's jwk. */
  proof: Record<string, unknown> | undefined;
  jkt: string | undefined;
  /** What is wrong with the proof (RFC 9449 §4.3), as the test's resource server sees it. */
  problems: string[];
}

type Answer = { status: number; headers?: Record<string, string> };

/**
 * A resource server that checks every proof as RFC 9449 §4.3 says (signature with the header's jwk,
 * typ, htm, htu, iat, a jti never seen before, ath of the token), and answers as `answer` decides.
 */
async function startApi(answer: (call: ProofCall, index: number) => Answer | Promise<Answer>) {
  const calls: ProofCall[] = [];
  const seenJti = new Set<string>();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const http = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const token = /^DPoP (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const call: ProofCall = {
      method: req.method!,
      url: req.url!,
      authorization: req.headers.authorization,
      body,
      token,
      proof: undefined,
      jkt: undefined,
      problems: [],
    };
    const proof = req.headers.dpop;
    if (typeof proof !== 'string') call.problems.push('no proof');
    else {
      try {
        const header = decodeProtectedHeader(proof);
        const key = await importJWK(header.jwk as JWK, header.alg);
        const { payload } = await jwtVerify(proof, key, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA'] });
        call.proof = payload;
        call.jkt = await calculateJwkThumbprint(header.jwk as JWK);
        if (payload.htm !== req.method) call.problems.push(`htm ${payload.htm}`);
        if (payload.htu !== `${origin}${new URL(req.url!, origin).pathname}`) call.problems.push(`htu ${payload.htu}`);
        if (typeof payload.iat !== 'number' || Math.abs(payload.iat - Date.now() / 1000) > 10) call.problems.push(`iat ${payload.iat}`);
        if (typeof payload.jti !== 'string' || seenJti.has(payload.jti)) call.problems.push(`jti ${payload.jti}`);
        seenJti.add(payload.jti as string);
        if (!token || payload.ath !== sha256(token)) call.problems.push(`ath ${payload.ath}`);
      } catch (error) {
        call.problems.push(`proof: ${(error as Error).message}`);
      }
    }
    calls.push(call);
    const { status, headers = {} } = await answer(call, calls.length - 1);
    res.statusCode = status;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.end(JSON.stringify({ call: calls.length }));
  });
  await new Promise<void>((done) => http.listen(port, '127.0.0.1', done));
  closers.push(() => new Promise((done) => http.close(done)));
  return { origin, calls };
}

const NONCE_CHALLENGE = { 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"' };

describe('a DPoP-bound token', () => {
  test('reference mode: introspection answers token_type DPoP and cnf.jkt = the thumbprint of the key that signs the proofs (ES256)', async () => {
    const worker = await newWorker(server, { token_mode: 'reference' });
    const client = tokenClient(server, worker);
    const { token, tokenType, headers } = await client.getAuthorization('GET', 'https://api.example.com/x');
    assert.equal(tokenType, 'DPoP');
    assert.equal(headers.authorization, `DPoP ${token}`);
    assert.equal(decodeProtectedHeader(headers.dpop!).alg, 'ES256', 'ES256 by default');
    assert.equal(await client.getToken(), token, 'getToken() still resolves to the token string');
    const info = await introspect(server, worker, token);
    assert.equal(info.active, true);
    assert.equal(info.token_type, 'DPoP');
    assert.equal(info.cnf?.jkt, await thumbprintOf(headers.dpop!));
  });

  test('jwt mode: the JWT carries cnf.jkt = the key thumbprint; EdDSA when asked', async () => {
    const worker = await newWorker(server, { token_mode: 'jwt' });
    for (const dpop of [true, { alg: 'EdDSA' as const }]) {
      const client = tokenClient(server, worker, { dpop });
      const { token, headers } = await client.getAuthorization('POST', 'https://api.example.com/x');
      assert.equal(decodeProtectedHeader(headers.dpop!).alg, dpop === true ? 'ES256' : 'EdDSA');
      assert.deepEqual(decodeJwt(token).cnf, { jkt: await thumbprintOf(headers.dpop!) });
    }
  });

  test('getAuthorization() with a nonce → that proof and the next ones for the origin carry it; another origin none', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const proofs = [
      await client.getAuthorization('GET', 'https://api.example.com/a', { nonce: 'server-nonce' }),
      await client.getAuthorization('DELETE', 'https://api.example.com/b?x=1'),
      await client.getAuthorization('GET', 'https://other.example.com/a'),
    ].map(({ headers }) => decodeJwt(headers.dpop!));
    assert.deepEqual(
      proofs.map((p) => [p.htm, p.htu, p.nonce]),
      [
        ['GET', 'https://api.example.com/a', 'server-nonce'],
        ['DELETE', 'https://api.example.com/b', 'server-nonce'],
        ['GET', 'https://other.example.com/a', undefined],
      ],
    );
  });

  test('the private key cannot be read back unless it is shared through Redis', async () => {
    const own = await generateDpopKey('ES256', false);
    await assert.rejects(crypto.subtle.exportKey('jwk', own.privateKey));
    assert.equal(own.exported, undefined);
    const shared = await generateDpopKey('ES256', true);
    assert.equal(typeof shared.exported?.d, 'string');
  });

  test('a token endpoint that answers token_type Bearer to a DPoP request → TokenRequestError, the token is not used', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const stub = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration')
        return res.end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }));
      res.end(JSON.stringify({ access_token: 'unbound', token_type: 'Bearer', expires_in: 60 }));
    });
    await new Promise<void>((done) => stub.listen(port, '127.0.0.1', done));
    closers.push(() => new Promise((done) => stub.close(done)));
    const client = tokenClient({ url: issuer }, { client_id: 'c', client_secret: 's' });
    await assert.rejects(client.getToken(), (error: unknown) => error instanceof TokenRequestError && error.error === 'invalid_token_type');
  });

  test('without dpop nothing changes: Bearer, no proof', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker, { dpop: false });
    const { token, tokenType, headers } = await client.getAuthorization('GET', 'https://api.example.com/x');
    assert.deepEqual([tokenType, headers], ['Bearer', { authorization: `Bearer ${token}` }]);
    assert.equal((await introspect(server, worker, token)).token_type, 'Bearer');
  });
});

describe('fetch() with dpop', () => {
  test('a proof per call, checked by a resource server that introspects the token: htm, htu without query or fragment, unique jti, ath, key = cnf.jkt', async () => {
    const worker = await newWorker(server);
    const resourceServer = await newWorker(server, { introspection_audiences: [server.url] });
    const client = tokenClient(server, worker);
    const api = await startApi(async (call) => {
      const info = call.token ? await introspect(server, resourceServer, call.token) : { active: false };
      const ok = call.problems.length === 0 && info.active && info.token_type === 'DPoP' && info.cnf?.jkt === call.jkt;
      return { status: ok ? 200 : 401 };
    });
    const requests = await tokenRequestCounter(server);
    const sent: [string, RequestInit][] = [
      [`${api.origin}/items?page=2#top`, {}],
      [`${api.origin}/items`, { method: 'post', body: 'x' }],
      [`${api.origin}/items/1`, { method: 'PATCH', body: 'y' }],
      [`${api.origin}/items/1`, { method: 'DELETE', headers: { authorization: 'Bearer ignored', dpop: 'ignored' } }],
    ];
    for (const [url, init] of sent) assert.equal((await client.fetch(url, init)).status, 200, `${init.method ?? 'GET'} ${url}`);
    assert.deepEqual(
      api.calls.map((c) => [c.method, c.proof?.htm, c.proof?.htu, c.problems]),
      [
        ['GET', 'GET', `${api.origin}/items`, []],
        ['POST', 'POST', `${api.origin}/items`, []],
        ['PATCH', 'PATCH', `${api.origin}/items/1`, []],
        ['DELETE', 'DELETE', `${api.origin}/items/1`, []],
      ],
    );
    assert.equal(new Set(api.calls.map((c) => c.token)).size, 1, 'one token');
    assert.equal(new Set(api.calls.map((c) => c.proof?.jti)).size, 4, 'a fresh jti per call');
    assert.equal(await requests(), 1);
  });

  test('a resource server that asks for its nonce once → the retry carries it, same token; the nonce is kept for that origin and renewed from DPoP-Nonce', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const api = await startApi((call, index) => {
      if (index === 0) return { status: 401, headers: { ...NONCE_CHALLENGE, 'dpop-nonce': 'n-1' } };
      if (index === 2) return { status: 200, headers: { 'dpop-nonce': 'n-2' } }; // a new nonce on a success
      return { status: call.problems.length ? 400 : 200 };
    });
    const requests = await tokenRequestCounter(server);
    const response = await client.fetch(`${api.origin}/r`, { method: 'POST', body: 'payload' });
    assert.equal(response.status, 200);
    assert.equal((await client.fetch(`${api.origin}/r`)).status, 200);
    assert.equal((await client.fetch(`${api.origin}/r`)).status, 200);
    assert.deepEqual(
      api.calls.map((c) => [c.proof?.nonce, c.body, c.problems]),
      [
        [undefined, 'payload', []],
        ['n-1', 'payload', []],
        ['n-1', '', []],
        ['n-2', '', []],
      ],
    );
    assert.equal(new Set(api.calls.map((c) => c.token)).size, 1, 'the nonce challenge does not renew the token');
    assert.equal(await requests(), 1);
    // Another origin has its own nonce (none).
    const other = await startApi(() => ({ status: 200 }));
    await client.fetch(`${other.origin}/r`);
    assert.equal(other.calls[0]!.proof?.nonce, undefined);
  });

  test('a server that asks for a nonce every time → answered once only: two calls, the 401 returned', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    let n = 0;
    const api = await startApi(() => ({ status: 401, headers: { ...NONCE_CHALLENGE, 'dpop-nonce': `n-${++n}` } }));
    const response = await client.fetch(`${api.origin}/r`);
    assert.equal(response.status, 401);
    await sleep(200);
    assert.deepEqual(
      api.calls.map((c) => c.proof?.nonce),
      [undefined, 'n-1'],
    );
  });

  test('an invalid_token 401 → a new token and a new proof (ath of the new token), once', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const api = await startApi((_call, index) =>
      index === 0 ? { status: 401, headers: { 'www-authenticate': 'DPoP error="invalid_token"' } } : { status: 200 },
    );
    assert.equal((await client.fetch(`${api.origin}/r`)).status, 200);
    assert.equal(api.calls.length, 2);
    assert.notEqual(api.calls[1]!.token, api.calls[0]!.token);
    for (const call of api.calls) assert.deepEqual(call.problems, []);
  });
});

describe('DPoP nonces at the token endpoint', () => {
  test('a server requiring nonces (DPOP_NONCES=true) → the 400 use_dpop_nonce is answered once, the token is bound', async (t) => {
    const nonced = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, DPOP_NONCES: 'true' } });
    closers.push(() => nonced.stop());
    const worker = await newWorker(nonced);
    // Whether this server asks for nonces at all (DPOP_NONCES arrives with the server's DPoP work).
    const probe = tokenClient(nonced, worker);
    const { token, headers } = await probe.getAuthorization('GET', 'https://api.example.com/x');
    const requests = await tokenRequestCounter(nonced);
    const client = tokenClient(nonced, worker);
    const second = await client.getAuthorization('GET', 'https://api.example.com/x');
    const asked = await requests();
    if (asked === 1) return t.skip('this server does not require DPoP nonces (DPOP_NONCES not supported): the token-endpoint nonce path is untested here');
    assert.equal(asked, 2, 'the request, and its retry with the nonce');
    for (const [bound, proof] of [
      [token, headers.dpop!],
      [second.token, second.headers.dpop!],
    ] as const) {
      const info = await introspect(nonced, worker, bound);
      assert.equal(info.token_type, 'DPoP');
      assert.equal(info.cnf?.jkt, await thumbprintOf(proof));
    }
  });
});

/** The Redis key a DPoP client shares its token under (as the kit names it). */
const dpopCacheKey = (issuer: string, clientId: string) =>
  `tally:token:${createHash('sha256')
    .update(JSON.stringify([issuer, clientId, 'api:read', '', 'dpop', 'ES256']))
    .digest('base64url')}`;

describe('DPoP with a shared Redis', () => {
  test('two processes → one token request, one token, one key: both proofs carry the thumbprint the token is bound to', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const requests = await tokenRequestCounter(server);
    const env = {
      ...process.env,
      NODE_NO_WARNINGS: '1',
      ISSUER: server.url,
      CLIENT_ID: worker.client_id,
      CLIENT_SECRET: worker.client_secret,
      SCOPE: 'api:read',
      REDIS_URL: redis.url,
      DPOP_URL: 'https://api.example.com/items',
    };
    const children = [0, 1].map(() => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/helpers/token-client-child.ts')], {
        cwd: root,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('exit', () => clearTimeout(timer));
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const next = async () => {
        const line = await lines.next();
        if (line.done) throw new Error(`the child exited without answering: ${stderr}`);
        return line.value;
      };
      return { child, next };
    });
    for (const { next } of children) assert.equal(await next(), 'ready');
    for (const { child } of children) child.stdin!.end('go\n');
    const answers = await Promise.all(children.map(async ({ next }) => JSON.parse(await next()) as { token?: string; dpop?: string; error?: string }));
    for (const answer of answers) assert.equal(answer.error, undefined);
    assert.equal(answers[0]!.token, answers[1]!.token, 'one token');
    assert.notEqual(answers[0]!.dpop, answers[1]!.dpop);
    const [a, b] = await Promise.all(answers.map((answer) => thumbprintOf(answer.dpop!)));
    assert.equal(a, b, 'one key');
    assert.equal((await introspect(server, worker, answers[0]!.token!)).cnf?.jkt, a, 'the key the token is bound to');
    for (const answer of answers) assert.equal(decodeJwt(answer.dpop!).ath, sha256(answer.token!));
    assert.equal(await requests(), 1);
  });

  test('a process that took the shared token keeps its key: a renewal it makes is bound to the same key', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const a = tokenClient(server, worker, { redisUrl: redis.url });
    const b = tokenClient(server, worker, { redisUrl: redis.url });
    const first = await a.getAuthorization('GET', 'https://api.example.com/x');
    const taken = await b.getAuthorization('GET', 'https://api.example.com/x');
    assert.equal(taken.token, first.token);
    await b.invalidate();
    const renewed = await b.getAuthorization('GET', 'https://api.example.com/x');
    assert.notEqual(renewed.token, first.token, 'b renewed');
    const jkt = await thumbprintOf(first.headers.dpop!);
    assert.equal(await thumbprintOf(renewed.headers.dpop!), jkt);
    assert.equal((await introspect(server, worker, renewed.token)).cnf?.jkt, jkt);
    assert.equal(await thumbprintOf((await a.getAuthorization('GET', 'https://api.example.com/x')).headers.dpop!), jkt);
  });

  test('the shared entry is sealed: neither the token nor the private key appears in Redis', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const client = tokenClient(server, worker, { redisUrl: redis.url });
    const token = await client.getToken();
    const reader = new Redis(redis.url);
    closers.push(async () => reader.disconnect());
    const value = (await reader.get(dpopCacheKey(server.url, worker.client_id)))!;
    assert.ok(value, 'shared under the DPoP key');
    assert.ok(!value.includes(token) && !Buffer.from(value, 'base64url').toString('latin1').includes(token));
    assert.ok(!Buffer.from(value, 'base64url').toString('latin1').includes('"d"'), 'no JWK in the clear');
  });

  test('an entry altered by another writer, or sealed without a readable key → ignored, counted, and a real bound token is used', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const hostile = new Redis(redis.url);
    closers.push(async () => hostile.disconnect());
    const key = dpopCacheKey(server.url, worker.client_id);
    const first = tokenClient(server, worker, { redisUrl: redis.url });
    const shared = await first.getToken();
    const sealed = (await hostile.get(key))!;

    // 1. A byte changed by a writer without the secret.
    const raw = Buffer.from(sealed, 'base64url');
    raw[20]! ^= 1;
    await hostile.set(key, raw.toString('base64url'), 'PX', 60_000);
    const second = tokenClient(server, worker, { redisUrl: redis.url });
    const { token: secondToken, headers } = await second.getAuthorization('GET', 'https://api.example.com/x');
    assert.equal(second.stats().rejectedCacheEntries, 1);
    assert.notEqual(secondToken, shared, 'a new token, not the one in the altered entry');
    assert.equal((await introspect(server, worker, secondToken)).cnf?.jkt, await thumbprintOf(headers.dpop!));

    // 2. A properly sealed entry whose token is bound to a key that cannot be read: never used.
    const sealingKey = deriveEntryKey(worker.client_secret, key, 'tally client token cache');
    const entry = JSON.parse(unsealEntry(sealingKey, (await hostile.get(key))!, key)!);
    for (const broken of [
      { ...entry, dpopKey: undefined },
      { ...entry, dpopKey: { ...entry.dpopKey, d: 'AAAA' } },
      { ...entry, tokenType: 'Bearer' },
    ]) {
      await hostile.set(key, sealEntry(sealingKey, JSON.stringify(broken), key), 'PX', 60_000);
      const third = tokenClient(server, worker, { redisUrl: redis.url });
      const { token, headers: thirdHeaders } = await third.getAuthorization('GET', 'https://api.example.com/x');
      assert.equal(third.stats().rejectedCacheEntries, 1, JSON.stringify(Object.keys(broken)));
      assert.notEqual(token, entry.accessToken, 'the token bound to an unreadable key is not used');
      assert.equal((await introspect(server, worker, token)).cnf?.jkt, await thumbprintOf(thirdHeaders.dpop!));
    }
  });
});
