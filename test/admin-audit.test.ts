import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { admin, ADMIN_KEY, type AdminAnswer } from './helpers/admin.ts';
import { insertRows, query } from './helpers/db.ts';
import { REDIRECT_URI } from './helpers/fixtures.ts';
import { runCli, startServer, type TestServer } from './helpers/server.ts';

// The audit trail: source IPs (trusted hops only), created ids, refused unauthenticated attempts
// counted per source IP and minute, and retention by prune. Also the start-up rule for TALLY_SECRET_KEY.

const SECRET_KEY = Buffer.alloc(32, 3).toString('base64url');
let server: TestServer;
before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback', TALLY_SECRET_KEY: SECRET_KEY } });
});
after(() => server?.stop());

interface AuditItem {
  id: string;
  method: string;
  action: string | null;
  status: number;
  actor: unknown;
  source_ip: string | null;
  count: number;
  created_id: string | null;
}

/** The whole trail, newest first (it is short here). */
async function trail(on: TestServer = server): Promise<AuditItem[]> {
  const items: AuditItem[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const answer: AdminAnswer<{ items: AuditItem[]; next_cursor: string | null }> = await admin(
      on,
      'GET',
      `/audit?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    items.push(...answer.body.items);
    cursor = answer.body.next_cursor;
  }
  return items;
}

/** Waits until `check` holds of the trail (events are recorded once each answer is sent). */
async function trailUntil(check: (items: AuditItem[]) => boolean, on: TestServer = server): Promise<AuditItem[]> {
  let items = await trail(on);
  for (let i = 0; i < 50 && !check(items); i++) {
    await sleep(100);
    items = await trail(on);
  }
  return items;
}

/** A write with the wrong key, optionally through a proxy claiming the client is `forwardedFor`. */
function refusedWrite(on: TestServer, forwardedFor?: string): Promise<Response> {
  return fetch(`${on.url}/admin/revocations`, {
    method: 'POST',
    headers: { authorization: 'Bearer wrong-key', 'content-type': 'application/json', ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
    body: '{"subject":"x"}',
  });
}

describe('the audit trail', () => {
  test('a creating write records its source IP and the id it created (client_id, user id)', async () => {
    const client = await admin(server, 'POST', '/clients', { client_name: 'audited', redirect_uris: [REDIRECT_URI], scope: 'openid' });
    assert.equal(client.status, 201);
    const user = await admin(server, 'POST', '/users', { username: `audited${process.pid}`, password: 'a long enough password' });
    assert.equal(user.status, 201);
    const items = await trailUntil((all) => all.some((i) => i.action === 'createUser'));
    const created = items.find((i) => i.action === 'createClient')!;
    assert.equal(created.created_id, client.body.client_id);
    assert.equal(created.source_ip, '127.0.0.1');
    assert.equal(created.count, 1);
    assert.equal(items.find((i) => i.action === 'createUser')!.created_id, user.body.id);
    // A write that creates nothing names nothing.
    assert.equal((await admin(server, 'POST', '/revocations', { subject: 'nobody' })).status, 200);
    const revoked = (await trailUntil((all) => all.some((i) => i.action === 'revokeTokens' && i.status === 200))).find((i) => i.action === 'revokeTokens')!;
    assert.equal(revoked.created_id, null);
  });

  test('500 refused unauthenticated writes from one IP in a burst → one or two rows whose counts add up to 500', async () => {
    const ip = '198.51.100.23';
    for (let sent = 0; sent < 500; sent += 50) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => refusedWrite(server, ip)));
      for (const answer of answers) assert.equal(answer.status, 401);
    }
    const total = (items: AuditItem[]) => items.filter((i) => i.source_ip === ip).reduce((sum, i) => sum + i.count, 0);
    const items = await trailUntil((all) => total(all) >= 500);
    const rows = items.filter((i) => i.source_ip === ip);
    assert.ok(rows.length >= 1 && rows.length <= 2, `${rows.length} rows`);
    assert.equal(total(items), 500);
    for (const row of rows) assert.deepEqual([row.actor, row.status, row.created_id], [null, 401, null]);
    // Straight from the table: no row was lost or doubled under concurrency.
    const stored = await query<{ n: number }>(server, `SELECT COUNT(*) AS "n" FROM "audit_events" WHERE "source_ip" = ?`, ip);
    assert.equal(Number(stored[0]!.n), rows.length);
  });

  test('authenticated writes stay one row each, however many', async () => {
    const already = (await trail()).length;
    await Promise.all(Array.from({ length: 20 }, () => admin(server, 'POST', '/revocations', { subject: 'nobody' })));
    const items = await trailUntil((all) => all.length >= already + 20);
    assert.equal(items.length, already + 20);
  });

  test('TRUST_PROXY=loopback: a refused call forwarded for 203.0.113.7 is recorded from 203.0.113.7', async () => {
    assert.equal((await refusedWrite(server, '203.0.113.7')).status, 401);
    const items = await trailUntil((all) => all.some((i) => i.source_ip === '203.0.113.7'));
    assert.ok(items.some((i) => i.source_ip === '203.0.113.7' && i.status === 401));
  });

  test('prune deletes audit events older than AUDIT_RETENTION_DAYS (default 90), in batches, and says how many', async () => {
    const day = 24 * 3600 * 1000;
    const seed = (count: number, daysAgo: number, marker: string) =>
      insertRows(
        server,
        'audit_events',
        ['id', 'method', 'status', 'created_at', 'source_ip', 'count'],
        Array.from({ length: count }, () => [randomUUID(), 'POST', 204, new Date(Date.now() - daysAgo * day), marker, 1]),
      );
    await seed(2500, 100, 'old');
    await seed(3, 80, 'recent');
    const count = async (marker: string) =>
      Number((await query<{ n: number }>(server, `SELECT COUNT(*) AS "n" FROM "audit_events" WHERE "source_ip" = ?`, marker))[0]!.n);

    const answer = await admin(server, 'POST', '/prune', {});
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.audit_deleted, 2500);
    assert.equal(typeof answer.body.deleted, 'number');
    assert.equal(await count('old'), 0);
    assert.equal(await count('recent'), 3, 'younger than 90 days: kept');
    assert.ok((await trail()).length > 0, 'today’s events stay');

    // The CLI, with a shorter retention, in batches of 2.
    const cli = runCli({ ...server.env, AUDIT_RETENTION_DAYS: '30' }, ['prune', '--batch-size', '2']);
    assert.equal(cli.status, 0, cli.stderr);
    const report = JSON.parse(cli.stdout);
    assert.equal(report.audit_deleted, 3);
    assert.ok(report.batches >= 2, JSON.stringify(report));
    assert.equal(await count('recent'), 0);
  });
});

describe('without trusted proxies, and without TALLY_SECRET_KEY', () => {
  let plain: TestServer;
  before(async () => {
    plain = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, TRUST_PROXY: '', TALLY_SECRET_KEY: '', NODE_ENV: '' } });
  });
  after(() => plain?.stop());

  test('TRUST_PROXY unset: X-Forwarded-For is ignored, the refused call is recorded from 127.0.0.1', async () => {
    assert.equal((await refusedWrite(plain, '203.0.113.7')).status, 401);
    const items = await trailUntil((all) => all.some((i) => i.status === 401), plain);
    const refused = items.filter((i) => i.status === 401);
    assert.deepEqual(
      refused.map((i) => i.source_ip),
      ['127.0.0.1'],
    );
  });

  test('TALLY_SECRET_KEY unset → one warning at start naming it and saying the root key is in the database', () => {
    const warnings = plain
      .output()
      .split('\n')
      .filter((line) => line.includes('TALLY_SECRET_KEY'));
    assert.equal(warnings.length, 1, plain.output());
    const line = JSON.parse(warnings[0]!);
    assert.equal(line.level, 40);
    assert.match(line.msg, /root key .* kept in the database/);
    assert.doesNotMatch(server.output(), /TALLY_SECRET_KEY/, 'no warning with the key set');
  });

  test('NODE_ENV=production without TALLY_SECRET_KEY → the server and the CLI refuse to start, naming it', async () => {
    const env = { ADMIN_API_KEY: ADMIN_KEY, NODE_ENV: 'production', TALLY_SECRET_KEY: '', DATABASE_URL: plain.databaseUrl };
    await assert.rejects(startServer({ env }), (error: Error) => {
      assert.match(error.message, /server exited with [1-9]\d*/);
      assert.match(error.message, /TALLY_SECRET_KEY/);
      return true;
    });
    const cli = runCli(env, ['prune']);
    assert.notEqual(cli.status, 0);
    assert.match(cli.stderr, /TALLY_SECRET_KEY/);
    // With the key, production starts (the CLI stands for the server here: same configuration).
    const withKey = runCli({ ...env, TALLY_SECRET_KEY: SECRET_KEY }, ['migrate']);
    assert.equal(withKey.status, 0, withKey.stderr);
  });
});
