import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config/index.ts';
import { createCacheStats } from '../src/lib/cache-stats.ts';
import type { RevocationMessage } from '../src/protocol/revocations.ts';
import { createLedgerStore } from '../src/storage/ledger.ts';
import { withLedgerCache } from '../src/storage/ledger-cache.ts';
import { createRevocationEventStore } from '../src/storage/revocation-events.ts';
import { createRevocationPassStore } from '../src/storage/revocation-passes.ts';
import { createRevokedTokenStore } from '../src/storage/revoked-tokens.ts';
import { createRevocation } from '../src/tokens/revocation/index.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { execute, query } from './helpers/db.ts';
import { startServer } from './helpers/server.ts';
import { ledgerEntry, useTestStorage } from './helpers/storage.ts';

// A bulk revocation deactivates the matching entries at once; an entry of a token issued just
// before it, but written a moment later (another connection, a queued commit), is caught by a
// second pass, which announces the revocation again. The pass is recorded in the database and run
// by whichever process polls for it.

const opened = useTestStorage();
const SETTLE_MS = 200;

/** The revocation as one process has it; two calls share the database as two processes would. */
function aProcess() {
  const { db, sql } = opened.storage;
  const entries = withLedgerCache(createLedgerStore(db, sql), { stats: createCacheStats(), max: 0 });
  const published: RevocationMessage[] = [];
  const revocation = createRevocation({
    entries,
    revokedTokens: createRevokedTokenStore(db, sql),
    revocationEvents: createRevocationEventStore(db, sql),
    revocationPasses: createRevocationPassStore(db, sql),
    config: loadConfig({}),
    publish: async (message) => void published.push(message),
    settleMs: SETTLE_MS,
  });
  return { ledger: entries, revocation, published };
}

const live = (clientId: string, createdAt: Date) =>
  ledgerEntry({ id: randomUUID(), lookupHash: randomUUID(), clientId, createdAt, expiresAt: new Date(Date.now() + 3_600_000) });
const waiting = (clientId: string) => opened.storage.db.revocationPass.count({ where: { clientId } });

test('an entry issued before a bulk revocation but written after its update is deactivated by the second pass, and announced again', async () => {
  const { ledger, revocation, published } = aProcess();
  const clientId = `late-${randomUUID()}`;
  const onTime = live(clientId, new Date());
  await ledger.create(onTime);
  const issued = new Date();
  assert.equal(await revocation.revokeScope({ clientId }), 1);
  const late = live(clientId, issued); // issued before the revocation, written after its update
  await ledger.create(late);
  const after = live(clientId, new Date(Date.now() + 5)); // issued after it
  await ledger.create(after);
  assert.equal((await ledger.findByLookupHash(late.lookupHash))?.status, 'valid', 'missed by the first pass');
  assert.equal(published.length, 1);
  assert.equal(await waiting(clientId), 1, 'the second pass is recorded');

  await sleep(SETTLE_MS + 50);
  assert.ok((await revocation.runDuePasses()) >= 1);
  assert.equal((await ledger.findByLookupHash(onTime.lookupHash))?.status, 'inactive');
  assert.equal((await ledger.findByLookupHash(late.lookupHash))?.status, 'inactive', 'caught by the second pass');
  assert.equal((await ledger.findByLookupHash(after.lookupHash))?.status, 'valid', 'a token issued after the revocation is unaffected');
  assert.equal(published.length, 2, 'announced again: caches drop the late entry too');
  assert.deepEqual(published[1], published[0]);
  assert.equal(await waiting(clientId), 0, 'done, and gone');
});

test('with nothing written late, the revocation is announced once', async () => {
  const { ledger, revocation, published } = aProcess();
  const clientId = `calm-${randomUUID()}`;
  await ledger.create(live(clientId, new Date()));
  assert.equal(await revocation.revokeScope({ clientId }), 1);
  await sleep(SETTLE_MS + 50);
  await revocation.runDuePasses();
  assert.equal(published.length, 1);
  assert.equal(await waiting(clientId), 0);
});

test('a second pass is not run before it is due, and runs in one process of those polling together', async () => {
  const first = aProcess();
  const clientId = `raced-${randomUUID()}`;
  const issued = new Date();
  await first.revocation.revokeScope({ clientId });
  await first.ledger.create(live(clientId, issued));
  const others = [aProcess(), aProcess(), aProcess()];
  assert.equal(await waiting(clientId), 1);
  await Promise.all(others.map((p) => p.revocation.runDuePasses()));
  assert.equal(await waiting(clientId), 1, 'not yet due');
  await sleep(SETTLE_MS + 50);
  await Promise.all(others.map((p) => p.revocation.runDuePasses()));
  assert.equal(await waiting(clientId), 0);
  assert.equal(
    others.reduce((n, p) => n + p.published.length, 0),
    1,
    'run, and announced, once',
  );
});

test('a second pass recorded by a server that is killed right after the revocation is run by the next server on the database', async () => {
  const first = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  let second: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    const clientId = `killed-${randomUUID()}`;
    const revoking = admin(first, 'POST', '/revocations', { client_id: clientId }).catch(() => undefined);
    // Killed as soon as the pass is recorded: long before its own poll could take it (due a second later).
    const recorded = () => query<{ id: string }>(first, `SELECT "id" FROM "revocation_passes" WHERE "client_id" = ?`, clientId);
    let passes = await recorded();
    for (const deadline = Date.now() + 10_000; passes.length === 0; passes = await recorded()) {
      assert.ok(Date.now() < deadline, 'no pass recorded');
      await sleep(20); // a connection opened without pause would keep the server's writes waiting (SQLite)
    }
    process.kill(first.pid, 'SIGKILL');
    await revoking;
    await first.stop();
    assert.equal((await recorded()).length, 1, 'the pass outlives the process that recorded it');
    // An entry the first pass missed: issued at the revocation's instant, written after it.
    const late = randomUUID();
    await execute(
      first,
      `INSERT INTO "token_entries" ("id", "lookup_hash", "type", "format", "status", "client_id", "created_at", "expires_at")
       SELECT ?, ?, 'access_token', 'reference', 'valid', ?, "revoked_at", ? FROM "revocation_passes" WHERE "id" = ?`,
      late,
      late,
      clientId,
      new Date(Date.now() + 3_600_000),
      passes[0]!.id,
    );
    second = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, DATABASE_URL: first.databaseUrl } });
    const status = async () => (await query<{ status: string }>(first, `SELECT "status" FROM "token_entries" WHERE "id" = ?`, late))[0]?.status;
    for (const deadline = Date.now() + 10_000; (await status()) !== 'inactive'; await sleep(100)) {
      assert.ok(Date.now() < deadline, 'the late entry is still valid 10 s after the next server started');
    }
    for (const deadline = Date.now() + 5_000; (await recorded()).length > 0; await sleep(100)) {
      assert.ok(Date.now() < deadline, 'the pass is still recorded 5 s after it ran');
    }
  } finally {
    await second?.stop();
    await first.stop();
  }
});
