import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from './helpers/server.ts';

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
