import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { onPostgres, startServer, type TestServer } from './helpers/server.ts';
import { startPostgres } from './helpers/postgres.ts';

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test('/healthz → 200 while the process runs; /readyz → 200 while the database answers', async () => {
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready' });
});

test('/metrics → Prometheus text with requests per route', async () => {
  const response = await fetch(`${server.url}/metrics`);
  assert.equal(response.status, 200);
  const text = await response.text();
  assert.match(text, /^tally_http_requests_total\{route="operations",status="200"\} \d+/m);
  assert.match(text, /^# TYPE tally_http_request_duration_seconds histogram/m);
  assert.match(text, /^# TYPE tally_tokens_issued_total counter/m);
  assert.match(text, /^# TYPE tally_revocations_total counter/m);
});

// It stops the PostgreSQL server under the Tally server, so it starts one of its own; it runs in the
// SQLite pass already and would only repeat itself in the PostgreSQL pass.
test('/readyz → 503 within 15 s when PostgreSQL stops answering', { skip: onPostgres && 'run in the SQLite pass (it needs a PostgreSQL server of its own to stop)' }, async (t) => {
  const postgres = await startPostgres();
  if (!postgres) return t.skip('PostgreSQL binaries not installed (apt-get install postgresql)');
  const onPostgres = await startServer({ env: { DATABASE_URL: await postgres.createDatabase() } });
  try {
    assert.equal((await fetch(`${onPostgres.url}/readyz`)).status, 200);
    await postgres.stop();
    const started = Date.now();
    const answer = await fetch(`${onPostgres.url}/readyz`);
    assert.equal(answer.status, 503);
    assert.ok(Date.now() - started < 15_000);
    assert.equal((await fetch(`${onPostgres.url}/healthz`)).status, 200, 'the process itself is alive');
  } finally {
    await onPostgres.stop();
    await postgres.stop();
  }
});
