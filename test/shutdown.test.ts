import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ADMIN_KEY, registerClient } from './helpers/admin.ts';
import { createDatabaseOn, postgresPassServer } from './helpers/postgres.ts';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import { onPostgres, postgresOnly, startServer, type TestServer } from './helpers/server.ts';
import { startProxy, type TcpProxy } from './helpers/tcp-proxy.ts';

// The contract: SIGTERM finishes in-flight requests and exits 0. These are the cases where a dependency
// stopped answering first, and closing its connections could wait for ever (src/main.ts bounds it).

/** A client-credentials request; its answer does not matter here: it is the work in flight. */
const tokenRequest = (url: string, client: { client_id: string; client_secret?: string }) =>
  fetch(`${url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=api%3Aread',
    signal: AbortSignal.timeout(60_000),
  }).catch(() => undefined);

/** Silences the proxy with requests in flight, sends SIGTERM, and answers how long the exit took. */
async function stopWhileSilent(server: TestServer, proxy: TcpProxy) {
  // Through the admin API: the CLI's synchronous run would stall this process, and the proxy in it.
  const client = await registerClient(server, 'reference');
  assert.equal((await tokenRequest(server.url, client))?.status, 200);
  await proxy.silence();
  const inFlight = [tokenRequest(server.url, client), tokenRequest(server.url, client)];
  await new Promise((resolve) => setTimeout(resolve, 200));
  const started = Date.now();
  const code = await server.stop();
  const took = Date.now() - started;
  await Promise.all(inFlight);
  assert.equal(code, 0, server.output().slice(-2000));
  // 10 s for the requests in flight, 5 s for the rest, and slack for a loaded machine.
  assert.ok(took < 22_000, `exited ${took} ms after SIGTERM`);
}

test('SIGTERM while PostgreSQL has gone silent: exits 0 in bounded time', {
  skip: postgresOnly('the embedded database cannot go silent'),
}, async () => {
  const database = new URL(await createDatabaseOn(await postgresPassServer()));
  const proxy = await startProxy(database);
  after(() => proxy.close());
  const proxied = new URL(database);
  proxied.port = String(proxy.port);
  await stopWhileSilent(await startServer({ env: { DATABASE_URL: proxied.href, ADMIN_API_KEY: ADMIN_KEY } }), proxy);
});

// Whatever the database: run in the SQLite pass only.
test('SIGTERM while Redis has gone silent: exits 0 in bounded time, and says what it did not close', {
  skip: (onPostgres && 'run in the SQLite pass (Redis does not depend on the database)') || redisSkipReason(),
}, async () => {
  const redis = (await startRedis()) as TestRedis;
  after(() => redis.stop());
  const proxy = await startProxy(new URL(redis.url));
  after(() => proxy.close());
  const server = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, ADMIN_API_KEY: ADMIN_KEY } });
  await stopWhileSilent(server, proxy);
  const warnings = server
    .output()
    .split('\n')
    .filter((line) => line.includes('"shutdown_incomplete"'))
    .map((line) => JSON.parse(line) as { level: number; step: string });
  assert.deepEqual(
    warnings.map((w) => [w.level, w.step]),
    [[40, 'the database and Redis connections']],
  );
});
