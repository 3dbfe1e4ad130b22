import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { basicAuthorization } from '../src/protocol/client-credentials.ts';
import { readEventStream, type ServerSentEvent } from '../src/kits/shared/sse.ts';
import { runMigrations } from '../src/storage/migrate.ts';
import { isDatabaseUnavailable } from '../src/storage/unavailable.ts';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { Browser } from './helpers/browser.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { createDatabaseOn, postgresPassServer } from './helpers/postgres.ts';
import { freePort, postgresOnly, startServer, type TestServer } from './helpers/server.ts';
import { startProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

// A database that goes away is a 503 with Retry-After on every surface, each in its own shape, never a
// 500, a 401 or a hang; and everything works again when it returns, without a restart.

const caught = async (work: () => unknown): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  assert.fail('expected a failure');
};

/** A loopback port that accepts connections and does what `onSocket` says with each. */
async function listener(onSocket: (socket: Socket) => void): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('which errors mean the database is unavailable', () => {
  test('SQLite, provoked: a locked file (SQLITE_BUSY, also through Prisma), one that cannot be opened, a full one; not a constraint or a syntax error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-outage-'));
    try {
      const file = join(dir, 'tally.db');
      await runMigrations(`file:${file}`);
      const locker = new Database(file);
      locker.exec('BEGIN EXCLUSIVE');
      const other = new Database(file, { timeout: 0 });
      const busy = await caught(() => other.exec('BEGIN IMMEDIATE'));
      assert.equal((busy as { code?: string }).code, 'SQLITE_BUSY');
      assert.ok(isDatabaseUnavailable(busy));

      const { PrismaClient } = await import('../src/storage/generated/sqlite/client.js');
      const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
      const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: file, timeout: 0 }) });
      const prismaBusy = await caught(() => prisma.auditEvent.create({ data: { id: 'x', method: 'POST', status: 200, createdAt: new Date() } }));
      assert.equal((prismaBusy as { code?: string }).code, 'P1008', String(prismaBusy));
      assert.ok(isDatabaseUnavailable(prismaBusy));
      await prisma.$disconnect();
      locker.exec('ROLLBACK');

      const cannotOpen = await caught(() => new Database(dir));
      assert.equal((cannotOpen as { code?: string }).code, 'SQLITE_CANTOPEN');
      assert.ok(isDatabaseUnavailable(cannotOpen));

      const small = new Database(join(dir, 'small.db'));
      small.exec('CREATE TABLE t (x TEXT PRIMARY KEY)');
      small.pragma('max_page_count = 3');
      const full = await caught(() => {
        for (let i = 0; i < 100; i++) small.prepare('INSERT INTO t VALUES (?)').run(`${i}`.padEnd(1000));
      });
      assert.equal((full as { code?: string }).code, 'SQLITE_FULL');
      assert.ok(isDatabaseUnavailable(full));
      small.pragma('max_page_count = 1000');
      small.prepare('INSERT INTO t VALUES (?)').run('once');
      const duplicate = await caught(() => small.prepare('INSERT INTO t VALUES (?)').run('once'));
      assert.equal((duplicate as { code?: string }).code, 'SQLITE_CONSTRAINT_PRIMARYKEY');
      assert.equal(isDatabaseUnavailable(duplicate), false);
      const syntax = await caught(() => small.exec('SELEC 1'));
      assert.equal(isDatabaseUnavailable(syntax), false);
      // An I/O error cannot be provoked here; better-sqlite3 names it with its extended code.
      assert.ok(isDatabaseUnavailable(new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_WRITE')));
      for (const db of [other, locker, small]) db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('PostgreSQL drivers, provoked without a server: refused, closed on connect, silent; through pg, its pool and Prisma', async () => {
    const refusedPort = await freePort();
    const refused = await caught(() => new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${refusedPort}/x` }).connect());
    assert.equal((refused as { code?: string }).code, 'ECONNREFUSED');
    assert.ok(isDatabaseUnavailable(refused));

    const hangUp = await listener((socket) => socket.destroy());
    const silent = await listener(() => undefined);
    try {
      const pool = new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:${hangUp.port}/x` });
      const terminated = await caught(() => pool.query('SELECT 1'));
      assert.match(String((terminated as Error).message), /^Connection terminated/);
      assert.ok(isDatabaseUnavailable(terminated));
      await pool.end();

      const slow = new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:${silent.port}/x`, connectionTimeoutMillis: 200 });
      const timedOut = await caught(() => slow.query('SELECT 1'));
      assert.match(String((timedOut as Error).message), /timeout/);
      assert.ok(isDatabaseUnavailable(timedOut));
      await slow.end();

      const { PrismaClient } = await import('../src/storage/generated/postgresql/client.js');
      const { PrismaPg } = await import('@prisma/adapter-pg');
      const prisma = new PrismaClient({ adapter: new PrismaPg(new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:${refusedPort}/x` })) });
      const notReachable = await caught(() => prisma.client.findFirst());
      assert.equal((notReachable as { code?: string }).code, 'P1001', String(notReachable));
      assert.ok(isDatabaseUnavailable(notReachable));
      await prisma.$disconnect();
    } finally {
      hangUp.close();
      silent.close();
    }
    assert.equal(isDatabaseUnavailable(new Error('something else')), false);
    // Node's error for an HTTP client that hung up mid-body: ECONNRESET, but no socket call of ours failed.
    const http = createHttpServer();
    const hungUp = new Promise<Error>((resolve) => http.on('request', (req) => req.on('error', resolve).resume()));
    await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
    const socket = connect((http.address() as AddressInfo).port, '127.0.0.1', () => socket.end('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc'));
    const aborted = await hungUp;
    http.close();
    assert.equal((aborted as { code?: string }).code, 'ECONNRESET');
    assert.equal(isDatabaseUnavailable(aborted), false);
    assert.equal(isDatabaseUnavailable(undefined), false);
    // A client's own unreachable jwks_uri, say: an error that answers 4xx stays the caller's.
    assert.equal(isDatabaseUnavailable(Object.assign(new Error('invalid_client_metadata', { cause: refused }), { statusCode: 400 })), false);
    assert.ok(isDatabaseUnavailable(new Error('wrapped', { cause: refused })));
  });

  test('PostgreSQL, provoked on the server: a terminated backend (57P01) is unavailable, a unique violation is not', {
    skip: postgresOnly('needs a PostgreSQL server'),
  }, async () => {
    const url = await createDatabaseOn(await postgresPassServer());
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    await client.connect();
    const killer = new pg.Client({ connectionString: url });
    await killer.connect();
    try {
      await client.query('CREATE TABLE t (x INT PRIMARY KEY)');
      await client.query('INSERT INTO t VALUES (1)');
      const duplicate = await caught(() => client.query('INSERT INTO t VALUES (1)'));
      assert.equal((duplicate as { code?: string }).code, '23505');
      assert.equal(isDatabaseUnavailable(duplicate), false);
      const running = caught(() => client.query('SELECT pg_sleep(10)'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await killer.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      const terminated = await running;
      assert.equal((terminated as { code?: string }).code, '57P01');
      assert.ok(isDatabaseUnavailable(terminated));
    } finally {
      await killer.end();
      await client.end().catch(() => undefined);
    }
  });
});

/** fetch, failing with a message that names the URL when no answer comes within 20 s: a hang. */
const call = (url: string, init: RequestInit = {}): Promise<Response> =>
  fetch(url, { signal: AbortSignal.timeout(20_000), ...init }).catch((error: Error) =>
    assert.fail(error.name === 'TimeoutError' ? `no answer within 20 s from ${url}` : error),
  );

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('a PostgreSQL outage behind a TCP proxy, and its end', {
  skip: postgresOnly('the embedded SQLite database has no server to go down (its error codes are covered above)'),
}, () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let worker: RegisteredClient;
  let user: Awaited<ReturnType<typeof registerUser>>;
  let userToken: string;
  let workerToken: string;
  /** Issued before the cut and never read: not in the ledger cache. */
  let unreadToken: string;
  let laterRevoked: string;
  let interactionUrl: string;
  const browser = new Browser();
  let stream: { events: ServerSentEvent[]; comments: { text: string; at: number }[]; ended: () => boolean; close(): void };
  /** Requests refused during the outage (each must be logged and counted once). */
  let refused = 0;
  let cutAt = 0;

  const basic = (client: RegisteredClient) => basicAuthorization(client.client_id, client.client_secret!);
  const tokenRequest = (client: RegisteredClient, via: 'basic' | 'post' = 'basic') =>
    call(`${server.url}/token`, {
      method: 'POST',
      headers: { ...FORM, ...(via === 'basic' ? { authorization: basic(client) } : {}) },
      body: form({ grant_type: 'client_credentials', ...(via === 'post' ? { client_id: client.client_id, client_secret: client.client_secret! } : {}) }),
    });
  const introspect = (token: string, via: 'basic' | 'post' = 'basic') =>
    call(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { ...FORM, ...(via === 'basic' ? { authorization: basic(worker) } : {}) },
      body: form({ token, ...(via === 'post' ? { client_id: worker.client_id, client_secret: worker.client_secret! } : {}) }),
    });
  const authorizationUrl = (client: RegisteredClient) =>
    `${server.url}/auth?${form({ client_id: client.client_id, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`;
  const openStream = (client: RegisteredClient) => call(`${server.url}/revocations/stream`, { headers: { authorization: basic(client) } });
  const html = { accept: 'text/html' };

  /** Not reading on when it is not a 503: a 200 event stream would never end. */
  async function assertStatus503(response: Response, what: string) {
    if (response.status === 503) return;
    const text = response.headers.get('content-type')?.startsWith('text/event-stream') ? '(an event stream)' : await response.text();
    await response.body?.cancel().catch(() => undefined);
    assert.fail(`${what}: ${response.status} ${text}`);
  }

  /** An OAuth-shaped 503: `temporarily_unavailable`, Retry-After, not cached. */
  async function assertOAuth503(response: Response, what: string) {
    await assertStatus503(response, what);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/, what);
    const body = await response.json();
    assert.equal(body.error, 'temporarily_unavailable', what);
    assert.equal(typeof body.error_description, 'string', what);
    assert.ok(Number(response.headers.get('retry-after')) > 0, `${what}: Retry-After`);
    assert.equal(response.headers.get('cache-control'), 'no-store', what);
    refused++;
    return body;
  }

  /** A readable 503 page for people. */
  async function assertPage503(response: Response, what: string) {
    await assertStatus503(response, what);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/, what);
    assert.match(await response.text(), /Temporarily unavailable[\s\S]*Try again in a few seconds/, what);
    assert.ok(Number(response.headers.get('retry-after')) > 0, `${what}: Retry-After`);
    refused++;
  }

  /** The admin API's RFC 9457 problem. */
  async function assertProblem503(answer: { status: number; body: any; headers: Headers }, what: string) {
    assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
    assert.equal(answer.body.code, 'database_unavailable', what);
    assert.equal(answer.body.status, 503, what);
    assert.ok(Number(answer.headers.get('retry-after')) > 0, `${what}: Retry-After`);
    refused++;
  }

  before(async () => {
    const database = new URL(await createDatabaseOn(await postgresPassServer()));
    proxy = await startProxy(database);
    const proxied = new URL(database);
    proxied.port = String(proxy.port);
    server = await startServer({ env: { DATABASE_URL: proxied.href, ADMIN_API_KEY: ADMIN_KEY } });

    worker = await registerClient(server, 'reference', {
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'],
    });
    user = await registerUser(server);
    userToken = (await codeFlow(await discover(server, worker), user, 'openid profile')).access_token;
    workerToken = (await (await tokenRequest(worker)).json()).access_token;
    laterRevoked = (await (await tokenRequest(worker)).json()).access_token;
    unreadToken = (await (await tokenRequest(worker)).json()).access_token;
    assert.equal((await (await introspect(workerToken)).json()).active, true);

    // A sign-in under way: its interaction page is asked for again during the outage.
    const page = await browser.navigate(authorizationUrl(worker));
    assert.equal(page.response.status, 200);
    assert.match(page.url, /\/interaction\//);
    interactionUrl = page.url;

    // A validator's stream, open across the outage.
    const controller = new AbortController();
    const response = await fetch(`${server.url}/revocations/stream`, { headers: { authorization: basic(worker) }, signal: controller.signal });
    assert.equal(response.status, 200);
    const events: ServerSentEvent[] = [];
    const comments: { text: string; at: number }[] = [];
    let ended = false;
    void readEventStream(
      response.body!,
      (event) => events.push(event),
      () => undefined,
      (text) => comments.push({ text, at: Date.now() }),
    ).then(
      () => (ended = true),
      () => (ended = true),
    );
    stream = { events, comments, ended: () => ended, close: () => controller.abort() };
    const deadline = Date.now() + 10_000;
    while (!comments.some((c) => c.text.startsWith('connected'))) {
      assert.ok(Date.now() < deadline, 'the stream connects');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });

  after(async () => {
    stream?.close();
    await server?.stop();
    proxy?.close();
  });

  test('cut: every endpoint family answers 503 with Retry-After in its own shape, none a 500 or a 401', async () => {
    // Never looked up: the server must ask the database for it.
    const stranger = await registerClient(server, 'reference');
    // Looked up again (its copy in memory dropped by the change) just before the cut, so that the first
    // requests below find the client and its secret in memory: the database is then met further on.
    assert.equal((await admin(server, 'PATCH', `/clients/${worker.client_id}`, { client_name: 'worker' })).status, 200);
    assert.equal((await tokenRequest(worker)).status, 200);
    await proxy.cut();
    cutAt = Date.now();

    // Known to the server from the last 5 s: before this change, a 200 and then silence.
    await assertOAuth503(await openStream(worker), 'revocation stream, client in memory');
    // Authenticated from memory, answered by Tally directly (the ledger write fails)...
    const direct = await assertOAuth503(await tokenRequest(worker, 'basic'), 'token endpoint, client_credentials, Basic (direct answer)');
    // ... and by oidc-provider: the same answer.
    assert.deepEqual(await assertOAuth503(await tokenRequest(worker, 'post'), 'token endpoint, client_credentials, client_secret_post'), direct);
    // The authorization endpoint sends temporarily_unavailable to a client it knows (RFC 6749 §4.1.2.1)
    // and shows the page otherwise (the client's copy in memory may have expired by now).
    const known = await call(authorizationUrl(worker), { headers: html, redirect: 'manual' });
    if (known.status === 503) await assertPage503(known, 'authorization endpoint, client in memory');
    else {
      assert.equal(known.status, 303);
      const location = new URL(known.headers.get('location')!);
      assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
      assert.equal(location.searchParams.get('error'), 'temporarily_unavailable');
      refused++;
    }
    await assertPage503(await call(authorizationUrl(stranger), { headers: html, redirect: 'manual' }), 'authorization endpoint');
    await assertOAuth503(await introspect(workerToken, 'basic'), 'introspection (direct answer)');
    await assertOAuth503(await introspect(workerToken, 'post'), 'introspection');
    await assertOAuth503(
      await call(`${server.url}/token/revocation`, { method: 'POST', headers: { ...FORM, authorization: basic(worker) }, body: form({ token: workerToken }) }),
      'revocation',
    );
    await assertOAuth503(await call(`${server.url}/me`, { headers: { authorization: `Bearer ${userToken}` } }), 'userinfo');
    await assertOAuth503(
      await call(`${server.url}/device/auth`, { method: 'POST', headers: { ...FORM, authorization: basic(worker) }, body: form({ scope: 'openid' }) }),
      'device authorization',
    );
    await assertPage503(await call(`${server.url}/device`, { headers: html }), 'device verification page');
    await assertPage503(await call(`${server.url}/session/end`, { headers: html }), 'end-session page');
    await assertPage503(await browser.request(interactionUrl, { headers: html }), 'interaction page');
    await assertProblem503(await admin(server, 'GET', '/clients'), 'admin GET');
    await assertProblem503(await admin(server, 'POST', '/users', { username: 'during-outage', password: 'long enough password' }), 'admin POST');
    // A bearer token that cannot be looked up is not a wrong credential.
    await assertProblem503(await admin(server, 'GET', '/clients', undefined, unreadToken), 'admin GET with an access token');
    // One read before the cut is judged from the ledger cache: a token without scope admin.
    const cached = await admin(server, 'GET', '/clients', undefined, workerToken);
    assert.equal(cached.status, 403, JSON.stringify(cached.body));
    // Before this change, any client not in memory was told invalid_client.
    await assertOAuth503(await openStream(stranger), 'revocation stream, client authentication');

    const ready = await call(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.ok(Number(ready.headers.get('retry-after')) > 0);
    // What needs no database still answers.
    assert.equal((await call(`${server.url}/.well-known/openid-configuration`)).status, 200);
    assert.equal((await call(`${server.url}/jwks`)).status, 200);
  });

  test('the stream opened before the cut keeps its heartbeat (or ends), never falls silent', async () => {
    const deadline = cutAt + 12_000;
    while (!stream.ended() && !stream.comments.some((c) => c.text === 'keep-alive' && c.at > cutAt)) {
      assert.ok(Date.now() < deadline, 'a keep-alive after the cut, or the end of the stream');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  test('a database that accepts connections but never answers: 503 after the connect timeout, not a hang', async () => {
    await proxy.silence();
    const started = Date.now();
    const [token, listing] = await Promise.all([tokenRequest(worker, 'post'), admin(server, 'GET', '/users/someone')]);
    await assertOAuth503(token, 'token endpoint, silent database');
    await assertProblem503(listing, 'admin GET, silent database');
    assert.ok(Date.now() - started < 15_000, `answered within 15 s (${Date.now() - started} ms)`);
  });

  test('each refusal is logged once, as a structured warning with an event, and counted on /metrics; nothing was a 500', async () => {
    const metrics = await (await call(`${server.url}/metrics`)).text();
    const counted = [...metrics.matchAll(/^tally_database_unavailable_total\{route="[^"]+"\} (\d+)/gm)].reduce((sum, [, n]) => sum + Number(n), 0);
    assert.equal(
      counted,
      refused,
      metrics
        .split('\n')
        .filter((l) => l.startsWith('tally_database_unavailable'))
        .join('\n'),
    );
    assert.doesNotMatch(metrics, /^tally_http_requests_total\{[^}]*status="500"\}/m);
    const linesOf = (output: string) =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; event?: string; msg: string; route?: string });
    const refusalsIn = (lines: ReturnType<typeof linesOf>) => lines.filter((line) => line.event === 'database_unavailable');
    // A line written just before the answer read above may still be on its way (helpers/server.ts).
    const lines = linesOf(await server.outputUntil((output) => refusalsIn(linesOf(output)).length >= refused));
    const logged = refusalsIn(lines);
    assert.equal(logged.length, refused, JSON.stringify(logged.map((l) => l.route)));
    assert.ok(
      logged.every((line) => line.level === 40 && line.route),
      'warnings naming the route',
    );
    // An admin write's audit event cannot be recorded either (its own error, not the request's).
    const errors = lines.filter((line) => line.level >= 50 && line.msg !== 'audit event not recorded');
    assert.deepEqual(
      errors.map((l) => l.msg),
      [],
      'no request logged as failed',
    );
  });

  test('restored: tokens issued before still work, new ones issue, streams and pages answer; same process', async () => {
    await proxy.restore();
    const deadline = Date.now() + 20_000;
    while ((await call(`${server.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, 'ready again');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The same process served every request (its log lines name it), and still runs.
    process.kill(server.pid, 0);
    const pids = new Set(
      server
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => (JSON.parse(line) as { pid: number }).pid),
    );
    assert.deepEqual([...pids], [server.pid]);

    const introspection = await (await introspect(workerToken, 'post')).json();
    assert.equal(introspection.active, true, 'the revocation refused during the outage did not happen');
    assert.equal((await (await introspect(workerToken, 'basic')).json()).active, true);
    const info = await call(`${server.url}/me`, { headers: { authorization: `Bearer ${userToken}` } });
    assert.equal(info.status, 200);
    assert.equal((await info.json()).sub, user.id);
    for (const via of ['basic', 'post'] as const) {
      const issued = await tokenRequest(worker, via);
      assert.equal(issued.status, 200);
      assert.equal((await (await introspect((await issued.json()).access_token)).json()).active, true);
    }
    assert.equal((await admin(server, 'GET', '/clients')).status, 200);
    assert.equal((await admin(server, 'POST', '/users', { username: 'after-outage', password: 'long enough password' })).status, 201);
    const device = await call(`${server.url}/device/auth`, {
      method: 'POST',
      headers: { ...FORM, authorization: basic(worker) },
      body: form({ scope: 'openid' }),
    });
    assert.equal(device.status, 200);
    assert.equal((await call(`${server.url}/device`, { headers: html })).status, 200);
    const authorization = await call(authorizationUrl(worker), { headers: html, redirect: 'manual' });
    assert.equal(authorization.status, 303);
    assert.match(authorization.headers.get('location') ?? '', /\/interaction\//);
    const interaction = await browser.request(interactionUrl, { headers: html });
    assert.equal(interaction.status, 200);
    assert.match(await interaction.text(), /name="password"/);

    const fresh = await openStream(worker);
    assert.equal(fresh.status, 200);
    await fresh.body?.cancel();
    // The stream that lived through the outage (when it did not end) delivers what is revoked now.
    const revoked = await call(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { ...FORM, authorization: basic(worker) },
      body: form({ token: laterRevoked }),
    });
    assert.equal(revoked.status, 200);
    assert.equal((await (await introspect(laterRevoked)).json()).active, false);
    if (!stream.ended()) {
      const until = Date.now() + 5_000;
      while (!stream.events.some((e) => e.event === 'revocation')) {
        assert.ok(Date.now() < until, 'the revocation reaches the stream opened before the outage');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });
});
