import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { insertRows, query } from './helpers/db.ts';
import { REDIRECT_URI } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { root, startServer, tallyArgs, tallyNode, type TestServer } from './helpers/server.ts';

let server: TestServer;
before(async () => {
  // Access tokens live 2 s here, so that some expire during the test; refresh tokens live 14 days.
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ACCESS_TOKEN_TTL: '2' } });
});
after(() => server.stop());

/** 100,000 expired ledger entries and 1,000 expired revoked-list rows, written straight to the database. */
async function seedExpired(entries: number, listed: number) {
  const expired = Date.now() - 3_600_000;
  const created = new Date(expired - 7_200_000);
  await insertRows(
    server,
    'token_entries',
    ['id', 'lookup_hash', 'type', 'format', 'status', 'subject', 'client_id', 'created_at', 'expires_at'],
    Array.from({ length: entries }, (_, i) => [
      randomUUID(),
      randomBytes(32).toString('base64url'),
      'access_token',
      'reference',
      'valid',
      'seeded-user',
      'seeded-client',
      created,
      new Date(expired - (i % 1000)),
    ]),
  );
  await insertRows(
    server,
    'revoked_tokens',
    ['lookup_hash', 'type', 'reason', 'revoked_at', 'expires_at'],
    Array.from({ length: listed }, () => [randomBytes(32).toString('base64url'), 'access_token', 'revoked', created, new Date(expired)]),
  );
  // One-time marks (DPoP proofs' jti) whose time is up, as many as revoked-list rows.
  await insertRows(
    server,
    'replay_marks',
    ['key', 'expires_at'],
    Array.from({ length: listed }, () => [randomBytes(32).toString('base64url'), new Date(expired)]),
  );
}

function runPrune(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(tallyNode, [...tallyArgs('cli/index'), 'prune', ...args], {
      cwd: root,
      env: { ...process.env, ...server.env, NODE_NO_WARNINGS: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

test('prune deletes 100,000 expired entries in batches while the server keeps answering, and nothing still valid', async () => {
  const client = (
    await admin(server, 'POST', '/clients', {
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      scope: 'openid offline_access api:read',
    })
  ).body;
  const config = await discover(server, client);
  const username = `pruner${process.pid}`;
  await admin(server, 'POST', '/users', { username, password: 'a long password' });
  const user = { username, password: 'a long password' };

  const expiring = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
  const kept = await codeFlow(config, user, 'openid offline_access');
  const revoked = await codeFlow(config, user, 'openid offline_access');
  await oidc.tokenRevocation(config, revoked.refresh_token!);
  const revokedEntries = (await admin(server, 'GET', '/tokens?status=inactive&type=refresh_token')).body.items.concat(
    (await admin(server, 'GET', '/tokens?status=revoked&type=refresh_token')).body.items,
  );
  assert.ok(revokedEntries.length >= 1, 'the revoked refresh token has a revoked or inactive entry');
  await sleep(2500); // the access tokens above have now expired

  await seedExpired(100_000, 1_000);
  const before = (await query<{ n: number }>(server, 'SELECT COUNT(*) AS n FROM token_entries'))[0]!.n;

  const startedAt = Date.now();
  const pruning = runPrune(['--batch-size', '500']);
  let answered = 0;
  let failed = 0;
  let finished = false;
  void pruning.then(() => (finished = true));
  while (!finished) {
    const response = await fetch(`${server.url}/healthz`).catch(() => undefined);
    const info = await oidc.tokenIntrospection(config, kept.refresh_token!).catch(() => undefined);
    if (response?.ok && info?.active === true) answered++;
    else failed++;
  }
  const result = await pruning;
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.ok(report.token_entries >= 100_000, JSON.stringify(report));
  assert.ok(report.revoked_tokens >= 1_000, JSON.stringify(report));
  assert.ok(report.batches >= 200, `ran in batches of 500: ${report.batches}`);
  assert.ok(report.replay_marks >= 1_000, JSON.stringify(report));
  assert.equal(
    report.deleted,
    report.token_entries + report.revoked_tokens + report.provider_records + report.revocation_feed + report.throttle_counters + report.replay_marks,
  );
  assert.equal(failed, 0, 'every request during the prune succeeded');
  assert.ok(answered >= 3, `the server answered during the prune (${answered} rounds)`);

  const remaining = await query<{ status: string; expired: number | boolean }>(
    server,
    `SELECT status, expires_at < ? AS expired FROM token_entries`,
    new Date(startedAt),
  );
  assert.equal(remaining.filter((r) => r.expired).length, 0, 'no entry that had expired when the prune began is left');
  assert.equal(remaining.length, before - report.token_entries);
  assert.ok(
    remaining.some((r) => r.status === 'revoked' || r.status === 'inactive'),
    'revoked entries of unexpired tokens are kept',
  );
  for (const entry of revokedEntries) assert.equal((await admin(server, 'GET', `/tokens/${entry.id}`)).status, 200);

  assert.equal((await oidc.tokenIntrospection(config, kept.refresh_token!)).active, true, 'a valid token survives');
  assert.equal((await oidc.tokenIntrospection(config, expiring.access_token)).active, false, 'a pruned token stays inactive');
  assert.equal((await oidc.tokenIntrospection(config, revoked.refresh_token!)).active, false);

  const again = await admin(server, 'POST', '/prune', { older_than_seconds: 0 });
  assert.equal(again.status, 200);
  assert.equal(typeof again.body.deleted, 'number');
});

test('prune --older-than keeps what expired more recently; --limit bounds the work', async () => {
  await seedExpired(3_000, 0); // expired about an hour ago
  const recent = await runPrune(['--older-than', '86400']);
  assert.equal(JSON.parse(recent.stdout).token_entries, 0, 'nothing expired more than a day ago');
  const limited = await runPrune(['--limit', '1000', '--batch-size', '300']);
  assert.equal(JSON.parse(limited.stdout).deleted, 1000);
  const rest = await runPrune([]);
  assert.ok(JSON.parse(rest.stdout).token_entries >= 2000);
});
