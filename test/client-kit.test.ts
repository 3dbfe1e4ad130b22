import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createTokenClient, IssuerUnavailableError, TokenRequestError, type TokenClientOptions } from '../src/kits/client/index.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { REDIRECT_URI } from './helpers/fixtures.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';
import { freePort, root, startServer, type TestServer } from './helpers/server.ts';

let server: TestServer; // default token lifetime
let short: TestServer; // ACCESS_TOKEN_TTL=4
let redis: TestRedis | undefined;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  [server, short, redis] = await Promise.all([
    startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } }),
    startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ACCESS_TOKEN_TTL: '4' } }),
    startRedis(),
  ]);
});
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await Promise.all([server?.stop(), short?.stop(), redis?.stop()]);
});

const REDIS_SKIP = 'redis-server not installed: apt-get install redis-server (as .ci/run does)';

interface Worker {
  client_id: string;
  client_secret: string;
}

async function newWorker(on: TestServer, scope = 'api:read', extra: Record<string, unknown> = {}): Promise<Worker> {
  const answer = await admin(on, 'POST', '/clients', {
    client_name: 'client kit worker',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['client_credentials'],
    response_types: [],
    scope,
    ...extra,
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

/** A token client that the suite closes at the end. */
function tokenClient(on: TestServer, worker: Worker, extra: Partial<TokenClientOptions> = {}) {
  const client = createTokenClient({ issuer: on.url, clientId: worker.client_id, clientSecret: worker.client_secret, scope: 'api:read', ...extra });
  closers.push(() => client.close());
  return client;
}

/** Every request the server answered at its token endpoint, whatever the status, from GET /metrics. */
async function tokenRequests(on: TestServer): Promise<number> {
  const text = await (await fetch(`${on.url}/metrics`)).text();
  return [...text.matchAll(/^tally_http_requests_total\{route="token",status="\d+"\} (\d+)$/gm)].reduce((sum, [, n]) => sum + Number(n), 0);
}

/** Counts the token requests from now on. */
async function tokenRequestCounter(on: TestServer) {
  const start = await tokenRequests(on);
  return async () => {
    await sleep(50); // the server counts a request when its response has finished
    return (await tokenRequests(on)) - start;
  };
}

const basic = (worker: Worker) =>
  `Basic ${Buffer.from(`${encodeURIComponent(worker.client_id)}:${encodeURIComponent(worker.client_secret)}`).toString('base64')}`;

async function introspect(on: TestServer, worker: Worker, token: string): Promise<{ active: boolean; [claim: string]: unknown }> {
  const response = await fetch(`${on.url}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basic(worker), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
  return (await response.json()) as { active: boolean };
}

/** Sleeps until just after the next whole second, so that a token's whole-second `exp` is ~lifetime away. */
async function alignToSecond() {
  await sleep(1000 - (Date.now() % 1000) + 20);
}

const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()));

interface ApiCall {
  method: string;
  authorization: string | undefined;
  body: string;
}

/** A local HTTP API on a free port; `answer` decides each response. */
async function startApi(answer: (call: ApiCall, index: number) => number | Promise<number>) {
  const calls: ApiCall[] = [];
  const http = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const call = { method: req.method!, authorization: req.headers.authorization, body };
    calls.push(call);
    res.statusCode = await answer(call, calls.length - 1);
    if (res.statusCode === 401) res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
    res.end(JSON.stringify({ call: calls.length }));
  });
  const port = await freePort();
  await new Promise<void>((done) => http.listen(port, '127.0.0.1', done));
  closers.push(() => new Promise((done) => http.close(done)));
  return { url: `http://127.0.0.1:${port}/resource`, calls };
}

describe('getToken()', () => {
  test('100 concurrent calls → one token request, one token, and it introspects active', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const requests = await tokenRequestCounter(server);
    const tokens = await Promise.all(Array.from({ length: 100 }, () => client.getToken()));
    assert.equal(new Set(tokens).size, 1, 'every caller got the same token');
    assert.equal(await requests(), 1, 'exactly one token request');
    const info = await introspect(server, worker, tokens[0]!);
    assert.equal(info.active, true);
    assert.equal(info.client_id, worker.client_id);
    assert.equal(info.scope, 'api:read');
    // And later callers are served from the cache.
    assert.equal(await client.getToken(), tokens[0]);
    assert.equal(await requests(), 1);
  });

  test('two processes sharing one Redis → one token request between them', async (t) => {
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
    // Both processes are up with their clients created; then they ask at the same moment.
    for (const { next } of children) assert.equal(await next(), 'ready');
    for (const { child } of children) child.stdin!.end('go\n');
    const answers = await Promise.all(children.map(async ({ next }) => JSON.parse(await next()) as { token?: string; error?: string }));
    for (const answer of answers) assert.equal(answer.error, undefined);
    assert.ok(answers[0]!.token);
    assert.equal(answers[0]!.token, answers[1]!.token, 'both processes print the same token');
    assert.equal(await requests(), 1, 'one token request between the two processes');
    assert.equal((await introspect(server, worker, answers[0]!.token!)).active, true);
  });

  test('renews before expiry: skewSeconds 1 on a 4 s token → a new token after ~3.2 s, the old one still active', async () => {
    const worker = await newWorker(short);
    const client = tokenClient(short, worker, { skewSeconds: 1 });
    const requests = await tokenRequestCounter(short);
    await alignToSecond();
    const asked = Date.now(); // the token expires 4 s after this second began: ~3.98 s from now
    const first = await client.getToken();
    const issuedAt = Date.now();
    await sleepUntil(issuedAt + 2_500);
    assert.equal(await client.getToken(), first, 'cached at 2.5 s');
    await sleepUntil(Math.max(asked + 3_200, issuedAt + 3_050));
    const second = await client.getToken();
    assert.notEqual(second, first, `renewed at ${Date.now() - issuedAt} ms`);
    assert.equal((await introspect(short, worker, first)).active, true, 'the old token had not expired yet');
    assert.equal((await introspect(short, worker, second)).active, true);
    assert.equal(await requests(), 2);
  });

  test('never caches past half the lifetime: skewSeconds 60 on a 4 s token → renewed after ~2 s, not refetched every call', async () => {
    const worker = await newWorker(short);
    const client = tokenClient(short, worker, { skewSeconds: 60 });
    const requests = await tokenRequestCounter(short);
    await alignToSecond();
    const first = await client.getToken();
    const issuedAt = Date.now();
    const seen: { at: number; token: string }[] = [];
    while (Date.now() < issuedAt + 3_000) {
      seen.push({ at: Date.now() - issuedAt, token: await client.getToken() });
      await sleep(100);
    }
    const changed = seen.find((s) => s.token !== first);
    assert.ok(changed, 'renewed within 3 s (not cached for the whole 4 s lifetime)');
    assert.ok(changed.at >= 1_900 && changed.at <= 2_600, `renewed at ${changed.at} ms, expected ~2000`);
    assert.ok(
      seen.filter((s) => s.at < 1_900).every((s) => s.token === first),
      'cached until half the lifetime',
    );
    assert.equal(new Set(seen.map((s) => s.token)).size, 2);
    assert.equal(await requests(), 2, `two token requests for ${seen.length + 1} calls`);
    assert.equal((await introspect(short, worker, first)).active, true, 'renewed while the old token still worked');
  });
});

describe('fetch()', () => {
  test('an API that always answers 401 → two API calls, one extra token request, no loop', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const api = await startApi(() => 401);
    const original = await client.getToken();
    const requests = await tokenRequestCounter(server);
    const response = await client.fetch(api.url);
    assert.equal(response.status, 401);
    await sleep(300); // nothing more arrives
    assert.equal(api.calls.length, 2, 'the request and one retry');
    assert.equal(api.calls[0]!.authorization, `Bearer ${original}`);
    assert.notEqual(api.calls[1]!.authorization, api.calls[0]!.authorization, 'the retry carries a new token');
    assert.equal(await requests(), 1, 'one extra token request');
  });

  test('an API that answers 401 once then 200 → 200, the retry with a different token and the same body', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const api = await startApi((_call, index) => (index === 0 ? 401 : 200));
    const requests = await tokenRequestCounter(server);
    const response = await client.fetch(api.url, {
      method: 'POST',
      body: 'payload',
      headers: { 'content-type': 'text/plain', authorization: 'Bearer ignored' },
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { call: 2 });
    assert.equal(api.calls.length, 2);
    assert.notEqual(api.calls[1]!.authorization, api.calls[0]!.authorization);
    assert.equal(api.calls[1]!.authorization, `Bearer ${await client.getToken()}`, 'the new token is the cached one');
    for (const call of api.calls) assert.deepEqual([call.method, call.body], ['POST', 'payload']);
    assert.equal(await requests(), 2);
  });

  test('a stream body cannot be sent twice: the 401 is returned, and the next call has a new token', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const api = await startApi((_call, index) => (index === 0 ? 401 : 200));
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'));
        controller.close();
      },
    });
    const response = await client.fetch(api.url, { method: 'POST', body, duplex: 'half' } as RequestInit);
    assert.equal(response.status, 401);
    assert.equal(api.calls.length, 1);
    assert.equal(api.calls[0]!.body, 'streamed');
    assert.equal((await client.fetch(api.url)).status, 200);
    assert.notEqual(api.calls[1]!.authorization, api.calls[0]!.authorization, 'the token that got a 401 was dropped');
  });

  test('bodies from an async iterator or a Node stream are not replayed (nor replayed empty): the 401 is returned', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const api = await startApi(() => 401);
    const bodies = [
      async function* () {
        yield new TextEncoder().encode('generated');
      },
      () => Readable.from([Buffer.from('streamed')]),
    ];
    for (const [index, body] of bodies.entries()) {
      const response = await client.fetch(api.url, { method: 'POST', body: body() as unknown as BodyInit, duplex: 'half' } as RequestInit);
      assert.equal(response.status, 401);
      assert.equal(api.calls.length, index + 1, 'sent once');
    }
  });

  test('with Redis, two calls refused together both retry with a new token, not the refused one', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    for (let round = 0; round < 3; round++) {
      const client = tokenClient(server, worker, { redisUrl: redis.url });
      await client.invalidate();
      const refused = await client.getToken();
      // Both refusals go out together, once both calls have arrived.
      let arrived = 0;
      let bothHere: () => void = () => undefined;
      const together = new Promise<void>((done) => (bothHere = done));
      const api = await startApi(async (call) => {
        if (call.authorization !== `Bearer ${refused}`) return 200;
        if (++arrived === 2) bothHere();
        await together;
        return 401;
      });
      const statuses = (await Promise.all([client.fetch(api.url), client.fetch(api.url)])).map((r) => r.status);
      assert.deepEqual(
        statuses,
        [200, 200],
        `round ${round}: ${api.calls.map((c) => (c.authorization === `Bearer ${refused}` ? 'refused' : 'new')).join(', ')}`,
      );
    }
  });

  test('an API that introspects the token: after a revocation, one 401 then a new token and 200', async () => {
    const worker = await newWorker(server);
    const resourceServer = await newWorker(server, 'api:read', { introspection_audiences: [server.url] });
    const client = tokenClient(server, worker);
    const api = await startApi(async (call) => {
      const token = call.authorization?.replace(/^Bearer /, '') ?? '';
      return (await introspect(server, resourceServer, token)).active ? 200 : 401;
    });
    assert.equal((await client.fetch(api.url)).status, 200);
    const revoked = await client.getToken();
    const revocation = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { authorization: basic(worker), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: revoked }),
    });
    assert.equal(revocation.status, 200);
    const requests = await tokenRequestCounter(server);
    assert.equal((await client.fetch(api.url)).status, 200);
    assert.deepEqual(
      api.calls.map((c) => c.authorization === `Bearer ${revoked}`),
      [true, true, false],
    );
    assert.equal(await requests(), 1);
  });
});

describe('invalidate()', () => {
  test('forces a new token request', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker);
    const first = await client.getToken();
    const requests = await tokenRequestCounter(server);
    await client.invalidate();
    const second = await client.getToken();
    assert.notEqual(second, first);
    assert.equal(await client.getToken(), second);
    assert.equal(await requests(), 1);
  });

  test('with Redis, invalidate() in one client makes another client (same Redis) fetch a new token too', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const a = tokenClient(server, worker, { redisUrl: redis.url });
    const b = tokenClient(server, worker, { redisUrl: redis.url });
    const requests = await tokenRequestCounter(server);
    const first = await a.getToken();
    assert.equal(await b.getToken(), first, 'b takes the shared token');
    assert.equal(await requests(), 1);
    await b.invalidate();
    const second = await a.getToken();
    assert.notEqual(second, first, 'a dropped the token b invalidated');
    assert.equal(await b.getToken(), second);
    assert.equal(await requests(), 2);
  });
});

describe('typed errors', () => {
  test('wrong client secret → TokenRequestError invalid_client', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, { ...worker, client_secret: `${worker.client_secret}x` });
    await assert.rejects(client.getToken(), (error: unknown) => {
      assert.ok(error instanceof TokenRequestError, String(error));
      assert.equal(error.error, 'invalid_client');
      assert.equal(error.status, 401);
      return true;
    });
  });

  test('a scope the client may not have → TokenRequestError invalid_scope', async () => {
    const worker = await newWorker(server);
    const client = tokenClient(server, worker, { scope: 'api:write' });
    await assert.rejects(client.getToken(), (error: unknown) => error instanceof TokenRequestError && error.error === 'invalid_scope' && error.status === 400);
  });

  test('an unreachable issuer (a closed port) → IssuerUnavailableError', async () => {
    const client = tokenClient({ url: `http://127.0.0.1:${await freePort()}` } as TestServer, { client_id: 'nobody', client_secret: 'nothing' });
    await assert.rejects(client.getToken(), IssuerUnavailableError);
    await assert.rejects(client.fetch('http://127.0.0.1:9/never-called'), IssuerUnavailableError);
  });
});

describe('Redis', () => {
  test('the token is sealed in Redis, never stored in the clear', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const client = tokenClient(server, worker, { redisUrl: redis.url });
    const token = await client.getToken();
    const reader = new Redis(redis.url);
    reader.on('error', () => undefined);
    closers.push(async () => reader.disconnect());
    const keys = await reader.keys('*');
    assert.ok(
      keys.some((key) => key.startsWith('tally:token:')),
      `a tally:token: key among ${keys.join(', ')}`,
    );
    for (const key of keys) {
      assert.ok(!key.includes(token) && !key.includes(worker.client_secret), `key ${key}`);
      if ((await reader.type(key)) !== 'string') continue;
      const value = (await reader.get(key))!;
      assert.ok(!value.includes(token), `the access token is absent from ${key}`);
      assert.ok(!value.includes(worker.client_secret), `the client secret is absent from ${key}`);
      assert.ok(!Buffer.from(value, 'base64url').toString('latin1').includes(token), `not merely encoded in ${key}`);
    }
  });

  test('keeps working while Redis is down, and shares again once it is back', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const worker = await newWorker(server);
    const a = tokenClient(server, worker, { redisUrl: redis.url });
    const first = await a.getToken();
    const requests = await tokenRequestCounter(server);
    await redis.stop();
    const started = Date.now();
    assert.equal(await a.getToken(), first, 'the token in memory serves while Redis is down');
    assert.ok(Date.now() - started < 1_000, `answered in ${Date.now() - started} ms`);
    await a.invalidate();
    const second = await a.getToken();
    assert.notEqual(second, first);
    assert.equal(await requests(), 1);

    await redis.restart(); // empty: nothing is saved
    const b = tokenClient(server, worker, { redisUrl: redis.url });
    const third = await b.getToken();
    for (let i = 0; i < 100 && (await a.getToken()) !== third; i++) await sleep(50); // a reconnects
    assert.equal(await a.getToken(), third, 'a takes the token shared again');
    assert.equal(await requests(), 2);
  });
});
