import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { onPostgres, startServer, type TestServer } from './helpers/server.ts';
import { startPostgres } from './helpers/postgres.ts';
import { createClient } from './helpers/fixtures.ts';

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

const scrape = async () => (await fetch(`${server.url}/metrics`)).text();

/** A client-credentials token request with client_secret_basic. */
function clientCredentials(client: { client_id: string; client_secret?: string }) {
  return fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=api%3Aread',
  });
}

/** The value of one sample line of /metrics, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('/metrics → cache hits and misses of the client cache (no verified-secret cache any more); pool use on PostgreSQL only', async () => {
  const client = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
  const before = await scrape();
  const clientHits = (text: string) => sample(text, 'tally_cache_lookups_total{cache="client",result="hit"}') ?? 0;
  for (let i = 0; i < 3; i++) assert.equal((await clientCredentials(client)).status, 200);
  const afterwards = await scrape();
  // Client secrets are HMACs compared at each request: no cache of verified secrets to count.
  assert.doesNotMatch(afterwards, /cache="client_secret"/);
  assert.ok(clientHits(afterwards) - clientHits(before) >= 2, 'the client row is read once and then reused');

  const inUse = sample(afterwards, 'tally_db_pool_connections{state="in_use"}');
  const idle = sample(afterwards, 'tally_db_pool_connections{state="idle"}');
  const waiting = sample(afterwards, 'tally_db_pool_connections{state="waiting"}');
  if (onPostgres) {
    assert.ok(idle !== undefined && idle >= 1, 'the pool keeps the connections it opened');
    assert.ok(inUse !== undefined && inUse >= 0 && waiting === 0);
  } else {
    assert.equal(idle, undefined, 'the embedded database has no pool to report');
  }
});

test('/metrics → tokens issued and revoked counted per mode, revocations published per type', async () => {
  const issued = (text: string, mode: string) => sample(text, `tally_tokens_issued_total{kind="client_credentials",mode="${mode}"}`) ?? 0;
  const revoked = (text: string) => sample(text, 'tally_revocations_total{type="token"}') ?? 0;
  const before = await scrape();
  const tokens: Record<string, { token: string; basic: string }> = {};
  for (const mode of ['reference', 'jwt', 'stateless']) {
    const client = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read', token_mode: mode });
    const basic = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
    const answer = await clientCredentials(client);
    assert.equal(answer.status, 200);
    tokens[mode] = { token: ((await answer.json()) as { access_token: string }).access_token, basic };
  }
  for (const { token, basic } of Object.values(tokens)) {
    const revocation = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${token}`,
    });
    assert.equal(revocation.status, 200);
  }
  // Revoking a token twice revokes nothing the second time (RFC 7009: still a 200).
  const { token, basic } = tokens.reference!;
  const again = await fetch(`${server.url}/token/revocation`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${token}`,
  });
  assert.equal(again.status, 200);
  const afterwards = await scrape();
  const revokedInMode = (text: string, mode: string) => sample(text, `tally_tokens_revoked_total{mode="${mode}"}`) ?? 0;
  for (const mode of ['reference', 'jwt', 'stateless']) {
    assert.equal(issued(afterwards, mode) - issued(before, mode), 1, `one ${mode} token issued`);
    assert.equal(revokedInMode(afterwards, mode) - revokedInMode(before, mode), 1, `one ${mode} token revoked`);
  }
  assert.equal(revoked(afterwards) - revoked(before), 3, 'one revocation published per token; the repeated request found nothing to revoke');
});

// It stops the PostgreSQL server under the Tally server, so it starts one of its own; it runs in the
// SQLite pass already and would only repeat itself in the PostgreSQL pass.
test('/readyz → 503 within 15 s when PostgreSQL stops answering', {
  skip: onPostgres && 'run in the SQLite pass (it needs a PostgreSQL server of its own to stop)',
}, async (t) => {
  const postgres = await startPostgres();
  if (!postgres) return t.skip('PostgreSQL binaries not installed (apt-get install postgresql)');
  const tally = await startServer({ env: { DATABASE_URL: await postgres.createDatabase() } });
  try {
    assert.equal((await fetch(`${tally.url}/readyz`)).status, 200);
    await postgres.stop();
    const started = Date.now();
    const answer = await fetch(`${tally.url}/readyz`);
    assert.equal(answer.status, 503);
    assert.ok(Date.now() - started < 15_000);
    assert.equal((await fetch(`${tally.url}/healthz`)).status, 200, 'the process itself is alive');
  } finally {
    await tally.stop();
    await postgres.stop();
  }
});
