import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { readdirSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStorage } from '../src/storage/database.ts';
import { openPostgresSql } from '../src/storage/sql-postgres.ts';
import type { Sql } from '../src/storage/sql.ts';
import { createLedgerStore } from '../src/storage/ledger.ts';
import { createRevocationEventStore, eventKey } from '../src/storage/revocation-events.ts';
import { createRevokedTokenStore } from '../src/storage/revoked-tokens.ts';
import { createReplayMarkStore } from '../src/storage/replay-marks.ts';
import { createSqliteReader } from '../src/storage/sqlite-reader.ts';
import { onPostgres } from './helpers/server.ts';
import { ledgerEntry, useTestStorage } from './helpers/storage.ts';

// The hot path's prepared statements and Prisma share the tables: what one writes, the other reads alike.
const opened = useTestStorage();
const entry = ledgerEntry;

test('an entry written by a prepared statement reads back the same through Prisma, to the millisecond, and the other way round', async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  const written = entry();
  await ledger.create(written);
  const viaPrisma = await opened.storage.db.tokenEntry.findUnique({ where: { lookupHash: written.lookupHash } });
  assert.equal(viaPrisma?.createdAt.toISOString(), '2026-03-04T05:06:07.891Z');
  assert.equal(viaPrisma?.expiresAt.toISOString(), '2026-03-04T06:06:07.891Z');
  assert.equal(viaPrisma?.status, 'valid');

  const other = entry();
  await opened.storage.db.tokenEntry.create({ data: { ...other, status: 'valid' } });
  const viaSql = await ledger.findByLookupHash(other.lookupHash);
  assert.deepEqual(viaSql, await opened.storage.db.tokenEntry.findUnique({ where: { lookupHash: other.lookupHash } }));

  // Prisma's range filters compare the prepared statements' timestamps correctly.
  const deactivated = await ledger.deactivate({ subject: 'alice' }, new Date('2026-03-04T05:06:07.891Z'));
  assert.deepEqual(deactivated, { reference: 2, jwt: 0 });
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'inactive');
});

test('redeem: one of several racing redemptions wins; a redeemed entry keeps its time', async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  const written = entry({ type: 'refresh_token' });
  await ledger.create(written);
  const results = await Promise.all(Array.from({ length: 5 }, () => ledger.redeem(written.lookupHash)));
  assert.equal(results.filter(Boolean).length, 1);
  const row = await ledger.findByLookupHash(written.lookupHash);
  assert.equal(row?.status, 'redeemed');
  assert.ok(row?.redeemedAt instanceof Date && Math.abs(row.redeemedAt.getTime() - Date.now()) < 60_000);
  assert.equal(await ledger.revokeByLookupHash(written.lookupHash), 'reference', "the revoked entry's format");
  assert.equal(await ledger.revokeByLookupHash(written.lookupHash), undefined, 'a revoked entry is not revoked twice');
});

test('a duplicate lookup hash is a unique violation: upsert updates the entry instead', async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  const written = entry({ type: 'device_code' });
  await ledger.upsert(written);
  await ledger.upsert({ ...written, id: randomUUID(), subject: 'bob', scope: 'openid' });
  const row = await ledger.findByLookupHash(written.lookupHash);
  assert.equal(row?.id, written.id);
  assert.equal(row?.subject, 'bob');
  assert.equal(row?.scope, 'openid');
  await assert.rejects(ledger.create(written), (error: unknown) => opened.storage.sql.dialect === 'sqlite' || (error as { code?: string }).code === '23505');
});

test('writes issued together: a duplicate among them fails alone, the others land', async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  const first = entry();
  await ledger.create(first);
  const others = Array.from({ length: 8 }, () => entry());
  const results = await Promise.allSettled([
    ...others.slice(0, 4).map((e) => ledger.create(e)),
    ledger.create({ ...first, id: randomUUID() }),
    ...others.slice(4).map((e) => ledger.create(e)),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  for (const e of others) assert.equal((await ledger.findByLookupHash(e.lookupHash))?.id, e.id);
  assert.equal((await ledger.findByLookupHash(first.lookupHash))?.id, first.id);
});

test('revocation events: the prepared lookup finds exactly the combinations of a token', async () => {
  const events = createRevocationEventStore(opened.storage.db, opened.storage.sql);
  const revoked = createRevokedTokenStore(opened.storage.db, opened.storage.sql);
  const at = new Date('2026-05-01T00:00:00.123Z');
  const later = new Date('2027-01-01T00:00:00.000Z');
  await events.record(eventKey({ subject: 'carol' }).kind, eventKey({ subject: 'carol' }).value, at, later);
  await events.record(eventKey({ clientId: 'app', grantId: 'g9' }).kind, eventKey({ clientId: 'app', grantId: 'g9' }).value, at, later);
  await events.record(eventKey({ clientId: 'other' }).kind, eventKey({ clientId: 'other' }).value, at, later);
  const found = await events.findMatching({ subject: 'carol', clientId: 'app', grantId: 'g9' });
  assert.deepEqual(found.map((e) => e.kind).sort(), ['client+grant', 'subject']);
  assert.equal(found[0]!.revokedAt.toISOString(), '2026-05-01T00:00:00.123Z');
  assert.equal(await revoked.add('h1', 'refresh_token', 'consumed', later), true);
  assert.equal(await revoked.add('h1', 'refresh_token', 'consumed', later), false, 'listed once');
  assert.equal(await revoked.add('h1', 'refresh_token', 'revoked', later), false);
  assert.equal((await revoked.find('h1'))?.reason, 'revoked', 'a revocation overrides a consumption');
  assert.equal((await revoked.find('h1'))?.expiresAt.toISOString(), later.toISOString());
});

test('a lookup by a value containing NUL matches nothing (PostgreSQL would refuse the parameter)', async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  assert.equal(await ledger.findByLookupHash('abc\0def'), null);
  assert.equal(await ledger.revokeByLookupHash('abc\0def'), undefined);
});

test("SQLite: a write waiting for another connection's lock waits without blocking the event loop, then lands", {
  skip: onPostgres && 'SQLite locking',
}, async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  const other = new Database(opened.database.dbFile);
  try {
    // How often a 5 ms timer fires in 150 ms (about 30 times on an idle machine, far fewer on a loaded one).
    const ticksIn150ms = async () => {
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      await new Promise((done) => setTimeout(done, 150));
      clearInterval(ticker);
      return ticks;
    };
    const idle = await ticksIn150ms();
    other.exec('BEGIN IMMEDIATE');
    const written = entry();
    const pending = ledger.create(written);
    // The event loop keeps turning while the write waits for the lock: a write that blocked it would let
    // the timer fire at most once, after the wait. Compared with that bound, not with the idle count, which
    // a loaded machine moves by more than half from one 150 ms to the next (the test failed so at load 17).
    const waiting = await ticksIn150ms();
    assert.ok(waiting >= 2, `the event loop ran ${waiting} times in 150 ms (${idle} with no write waiting)`);
    other.exec('COMMIT');
    await pending;
    assert.equal((await ledger.findByLookupHash(written.lookupHash))?.id, written.id);
  } finally {
    other.close();
  }
});

test('a read in the background answers what `all` answers, Dates included; on SQLite the event loop turns while it runs', async () => {
  const { sql } = opened.storage;
  const ledger = createLedgerStore(opened.storage.db, sql);
  const written = entry();
  await ledger.create(written);
  const text = 'SELECT "id", "created_at" FROM "token_entries" WHERE "lookup_hash" = ?';
  assert.deepEqual(await sql.allInBackground(text, [written.lookupHash]), await sql.all(text, [written.lookupHash]));
  const [row] = await sql.allInBackground<{ created_at: Date }>(text, [written.lookupHash]);
  assert.ok(row?.created_at instanceof Date);
  assert.equal(row.created_at.getTime(), written.createdAt.getTime());
  if (onPostgres) return;
  // A read that costs SQLite a few hundred milliseconds of CPU: the turns the event loop takes meanwhile
  // are counted. Run by better-sqlite3 on this thread, it would answer before any turn could run.
  let turns = 0;
  let counting = true;
  const turn = () => {
    turns++;
    if (counting) setImmediate(turn);
  };
  setImmediate(turn);
  const [count] = await sql.allInBackground<{ n: number }>(
    'WITH RECURSIVE "c"("x") AS (SELECT 1 UNION ALL SELECT "x" + 1 FROM "c" WHERE "x" < ?) SELECT COUNT(*) AS "n" FROM "c"',
    [2_000_000],
  );
  counting = false;
  assert.equal(count?.n, 2_000_000);
  assert.ok(turns >= 2, `the event loop turned ${turns} times while the read ran`);
  // Only reads: a write sent this way is refused, and nothing is written.
  await assert.rejects(sql.allInBackground('DELETE FROM "token_entries" WHERE "lookup_hash" = ?', [written.lookupHash]), /only reads/);
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.id, written.id);
});

test('SQLite: the background reader starts with a read and stops when idle; a read after that starts it again', {
  skip: onPostgres && 'a worker thread of the SQLite connection',
}, async () => {
  const reader = createSqliteReader(opened.database.dbFile, { idleMs: 50 });
  try {
    assert.equal(reader.running(), false, 'no worker before the first read');
    const count = 'SELECT COUNT(*) AS "n" FROM "token_entries"';
    const [first] = (await reader.all(count, [])).rows;
    assert.equal(reader.running(), true);
    // Stopped after idleMs without a read (waited for up to 10 s: a loaded machine is slow to end a thread).
    for (let waited = 0; reader.running() && waited < 10_000; waited += 20) await new Promise((done) => setTimeout(done, 20));
    assert.equal(reader.running(), false, 'stopped after idleMs without a read');
    assert.deepEqual((await reader.all(count, [])).rows, [first]);
    assert.equal(reader.running(), true);
    // Reads sent together are all answered, and a stop waits for them.
    const together = await Promise.all([reader.all(count, []), reader.all(count, []), reader.all(count, [])]);
    assert.deepEqual(
      together.map((r) => r.rows),
      [[first], [first], [first]],
    );
  } finally {
    await reader.stop();
  }
  assert.equal(reader.running(), false);
});

test('SQLite: reads asking for the turn snapshot share one, which ends with the turn; every other statement runs outside it', {
  skip: onPostgres && 'SQLite transactions',
}, async () => {
  const { sql } = opened.storage;
  const other = new Database(opened.database.dbFile);
  const at = '2026-03-04T05:06:07.891+00:00';
  const add = (key: string) => other.prepare(`INSERT INTO "throttle_counters" VALUES (?, 1, ?, ?, ?)`).run(key, at, at, at);
  const COUNT = 'SELECT COUNT(*) AS "n" FROM "throttle_counters"';
  const shared = () => sql.get<{ n: number }>(COUNT, [], { turnSnapshot: true }).then((row) => Number(row!.n));
  const own = () => sql.get<{ n: number }>(COUNT).then((row) => Number(row!.n));
  const nextTurn = () => new Promise((done) => setImmediate(done));
  try {
    const before = await shared();
    await nextTurn();
    // In one turn: a shared read, another connection's commit, a shared read again (the same snapshot).
    const first = shared();
    add(`a-${randomUUID()}`);
    const second = shared();
    // A read that did not ask for it, in the same turn, sees the commit (it ends the shared snapshot).
    const third = own();
    assert.deepEqual(await Promise.all([first, second, third]), [before, before, before + 1]);
    await nextTurn();
    assert.equal(await shared(), before + 1);
    await nextTurn();
    // A statement that writes (INSERT … RETURNING), in a turn with a snapshot: committed at once, seen by others.
    const key = `b-${randomUUID()}`;
    void shared();
    const written = await sql.get<{ key: string }>(`INSERT INTO "throttle_counters" VALUES (?, 1, ?, ?, ?) RETURNING "key"`, [
      key,
      new Date(),
      new Date(),
      new Date(),
    ]);
    assert.equal(written?.key, key);
    assert.deepEqual(other.prepare('SELECT "key" FROM "throttle_counters" WHERE "key" = ?').get(key), { key });
    // A shared read does not keep the other connection from writing, nor a group commit from this one.
    void shared();
    add(`c-${randomUUID()}`);
    await sql.run(`INSERT INTO "throttle_counters" VALUES (?, 1, ?, ?, ?)`, [`d-${randomUUID()}`, new Date(), new Date(), new Date()]);
    await nextTurn();
    assert.equal(await shared(), before + 4);
  } finally {
    other.close();
  }
});

test('SQLite: the write-ahead log is copied into the database by the checkpoint worker, not in a commit', {
  skip: onPostgres && 'SQLite checkpoints',
}, async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  assert.deepEqual(await opened.storage.sql.get('PRAGMA wal_autocheckpoint'), { wal_autocheckpoint: 0 }, 'commits never checkpoint');
  const before = statSync(opened.database.dbFile).size;
  // About 1 MB: far below the 1,000 pages at which a commit would checkpoint by itself.
  const payload = 'p'.repeat(1000);
  for (let i = 0; i < 10; i++)
    await Promise.all(Array.from({ length: 100 }, () => ledger.create(entry({ lookupHash: randomUUID(), id: randomUUID(), payload }))));
  let grown = 0;
  for (const end = Date.now() + 5000; grown < 500_000 && Date.now() < end; ) {
    await new Promise((done) => setTimeout(done, 100));
    grown = statSync(opened.database.dbFile).size - before;
  }
  assert.ok(grown >= 500_000, `the database file grew by ${grown} bytes: the log was not checkpointed`);
});

test('SQLite, short-lived (a CLI command): no checkpoint worker; both connections checkpoint in the commit that fills the log', {
  skip: onPostgres && 'SQLite checkpoints',
}, async () => {
  const threads = () => readdirSync('/proc/self/task').length; // a worker is an OS thread of its own
  const before = threads();
  const storage = await openStorage({ databaseUrl: opened.database.databaseUrl, checkpointWorker: false });
  try {
    assert.equal(threads(), before, 'no worker started');
    assert.deepEqual(await storage.sql.get('PRAGMA wal_autocheckpoint'), { wal_autocheckpoint: 1000 });
    const [prisma] = (await storage.db.$queryRawUnsafe('PRAGMA wal_autocheckpoint')) as { wal_autocheckpoint: bigint }[];
    assert.equal(Number(prisma!.wal_autocheckpoint), 1000);
  } finally {
    await storage.close();
  }
  // The server's storage does start one (and stops it on close).
  const server = await openStorage({ databaseUrl: opened.database.databaseUrl });
  try {
    assert.equal(threads(), before + 1, 'the checkpoint worker');
  } finally {
    await server.close();
  }
  assert.equal(threads(), before);
});

test('SQLite: under a steady stream of commits the write-ahead log starts over instead of growing without end', {
  skip: onPostgres && 'SQLite checkpoints',
}, async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  const walFile = `${opened.database.dbFile}-wal`;
  const walSize = () => statSync(walFile, { throwIfNoEntry: false })?.size ?? 0;
  const dbSize = () => statSync(opened.database.dbFile).size;
  const payload = 'p'.repeat(1000);
  const before = dbSize();
  // Commits every few milliseconds, never a pause in which PASSIVE copies all of the log before the next
  // one begins. The database grows by 40 MB and some 250 MB of log are written, all of it kept in the
  // file when the log never starts over; the worker starts it over once it passes 4,000 pages (16 MB),
  // so the file holds at most that plus what is written until the worker's round comes (about 40 MB at
  // this test's rate; a slow disk that draws the PASSIVE copy out adds some 30 MB); without the
  // restart it holds all of it. The bound sits between the two.
  let largestWal = 0;
  for (let written = 0; dbSize() - before < 40_000_000; written += 100) {
    await Promise.all(Array.from({ length: 100 }, () => ledger.create(entry({ lookupHash: randomUUID(), id: randomUUID(), payload }))));
    await new Promise((done) => setTimeout(done, 2));
    largestWal = Math.max(largestWal, walSize());
    assert.ok(written < 200_000, 'the database file did not grow: the log was not copied into it');
  }
  assert.ok(largestWal < 110_000_000, `the log reached ${largestWal} bytes while the database grew by ${dbSize() - before}`);
});

test('PostgreSQL: Prisma and the prepared statements share one pool of DATABASE_POOL_SIZE connections', {
  skip: !onPostgres && 'PostgreSQL pool',
}, async () => {
  const ledger = createLedgerStore(opened.storage.db, opened.storage.sql);
  await Promise.all([
    ...Array.from({ length: 20 }, () => ledger.findByLookupHash(randomUUID())),
    ...Array.from({ length: 20 }, () => opened.storage.db.tokenEntry.count()),
  ]);
  const stats = opened.storage.sql.poolStats();
  assert.ok(stats && stats.total >= 1 && stats.total <= 3, `pool of at most 3 connections: ${JSON.stringify(stats)}`);
});

test('replay marks issued together: each new key is marked once, each repeat refused, an expired mark taken again', async () => {
  const marks = createReplayMarkStore(opened.storage.sql);
  const later = new Date(Date.now() + 60_000);
  const keys = Array.from({ length: 30 }, () => randomUUID());
  assert.deepEqual(
    await Promise.all(keys.map((key) => marks.mark(key, later))),
    keys.map(() => true),
  );
  // Repeats beside new keys, in one turn (on PostgreSQL a multi-row upsert would have answered 1 to each).
  const fresh = Array.from({ length: 10 }, () => randomUUID());
  const answers = await Promise.all([...keys.slice(0, 10), ...fresh, ...keys.slice(10, 20)].map((key) => marks.mark(key, later)));
  assert.deepEqual(answers, [...Array(10).fill(false), ...Array(10).fill(true), ...Array(10).fill(false)]);
  const expired = randomUUID();
  assert.equal(await marks.mark(expired, new Date(Date.now() - 1_000)), true);
  assert.deepEqual(await Promise.all([marks.mark(expired, later), marks.mark(randomUUID(), later)]), [true, true]);
  assert.equal(await marks.mark(expired, later), false);
  // One key asked for twice in one turn: marked once.
  const twice = randomUUID();
  assert.deepEqual(await Promise.all([marks.mark(twice, later), marks.mark(twice, later), marks.mark(randomUUID(), later)]), [true, false, true]);
});

/**
 * A test of PostgreSQL's batching: `body` gets Tally's statements on a pool of its own on the test
 * database, and the text of every statement sent through that pool, in order.
 */
function batchingTest(name: string, body: (on: { sql: Sql; statements: string[] }) => Promise<void>) {
  test(`PostgreSQL: ${name}`, { skip: !onPostgres && 'PostgreSQL batching' }, async () => {
    const pool = new pg.Pool({ connectionString: opened.database.databaseUrl, max: 2 });
    const statements: string[] = [];
    const query = pool.query.bind(pool);
    pool.query = ((config: { text: string }, ...rest: unknown[]) => {
      statements.push(config.text);
      return (query as (...args: unknown[]) => unknown)(config, ...rest);
    }) as typeof pool.query;
    try {
      await body({ sql: openPostgresSql(pool), statements });
    } finally {
      await pool.end();
    }
  });
}

batchingTest('the replay marks of one turn go out as one statement, whose answer says which were marked', async ({ sql, statements }) => {
  const marks = createReplayMarkStore(sql);
  const later = new Date(Date.now() + 60_000);
  const keys = Array.from({ length: 40 }, () => randomUUID());
  assert.ok((await Promise.all(keys.map((key) => marks.mark(key, later)))).every(Boolean));
  assert.equal(statements.length, 1, 'forty marks, one statement');
  statements.length = 0;
  const fresh = randomUUID();
  assert.deepEqual(await Promise.all([marks.mark(keys[3]!, later), marks.mark(fresh, later), marks.mark(keys[7]!, later)]), [false, true, false]);
  assert.equal(statements.length, 1);
});

test('replay marks live in replay_marks alone (no provider record); pruning deletes the expired ones in batches and keeps the live ones', async () => {
  const marks = createReplayMarkStore(opened.storage.sql);
  const tag = randomUUID();
  const live = Array.from({ length: 5 }, (_, i) => `live-${tag}-${i}`);
  const expired = Array.from({ length: 7 }, (_, i) => `expired-${tag}-${i}`);
  await Promise.all([
    ...live.map((key) => marks.mark(key, new Date(Date.now() + 60_000))),
    ...expired.map((key) => marks.mark(key, new Date(Date.now() - 60_000))),
  ]);
  const { db } = opened.storage;
  assert.equal(await db.providerRecord.count({ where: { model: 'ReplayDetection' } }), 0, 'no mark in provider_records');
  assert.equal(await db.replayMark.count({ where: { key: { in: [...live, ...expired] } } }), 12);

  assert.equal(await marks.pruneBatch(new Date(), 4), 4, 'a batch deletes at most its size');
  let pruned = 4;
  for (let count = 1; count > 0; pruned += count) count = await marks.pruneBatch(new Date(), 4);
  assert.ok(pruned >= 7, `every expired mark went (${pruned})`);
  assert.equal(await db.replayMark.count({ where: { key: { in: expired } } }), 0);
  assert.deepEqual((await db.replayMark.findMany({ where: { key: { in: live } }, select: { key: true } })).map((m) => m.key).sort(), live);
  // A live mark still refuses its key after the prune.
  assert.equal(await marks.mark(live[0]!, new Date(Date.now() + 60_000)), false);
});

batchingTest('one-row inserts and upserts issued together go out as one multi-row statement; a failing row fails alone', async ({ sql, statements }) => {
  const ledger = createLedgerStore(opened.storage.db, sql);
  const entries = Array.from({ length: 20 }, () => ledgerEntry());
  await Promise.all(entries.map((e) => ledger.create(e)));
  assert.equal(statements.length, 1, 'twenty inserts, one statement');
  assert.equal(await opened.storage.db.tokenEntry.count({ where: { lookupHash: { in: entries.map((e) => e.lookupHash) } } }), 20);

  statements.length = 0;
  const more = Array.from({ length: 5 }, () => ledgerEntry());
  const results = await Promise.allSettled([...more.map((e) => ledger.create(e)), ledger.create({ ...entries[0]!, id: randomUUID() })]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected'],
  );
  assert.equal((results[5] as PromiseRejectedResult).reason.code, '23505', 'the duplicate gets its own unique violation');
  assert.equal(statements.length, 1 + 6, 'the failed batch, then each row alone');
  assert.equal(await opened.storage.db.tokenEntry.count({ where: { lookupHash: { in: more.map((e) => e.lookupHash) } } }), 5);

  // Upserts too; two of one key in a batch cannot go in one statement, so they go one by one.
  statements.length = 0;
  const upserted = Array.from({ length: 10 }, () => ledgerEntry({ type: 'device_code' }));
  await Promise.all(upserted.map((e) => ledger.upsert(e)));
  assert.equal(statements.length, 1, 'ten upserts, one statement');
  statements.length = 0;
  await Promise.all([
    ledger.upsert({ ...upserted[0]!, subject: 'bob' }),
    ledger.upsert({ ...upserted[1]!, subject: 'carol' }),
    ledger.upsert({ ...upserted[0]!, subject: 'dave' }),
  ]);
  assert.equal(statements.length, 1 + 3);
  assert.ok(['bob', 'dave'].includes((await ledger.findByLookupHash(upserted[0]!.lookupHash))!.subject!));
  assert.equal((await ledger.findByLookupHash(upserted[1]!.lookupHash))!.subject, 'carol');
});

batchingTest(
  'one-row reads of one statement issued together go out as one; each answers its own row, a miss nothing, a failing read fails alone',
  async ({ sql, statements }) => {
    const writer = createLedgerStore(opened.storage.db, opened.storage.sql);
    const entries = Array.from({ length: 12 }, (_, i) => ledgerEntry({ subject: `reader-${i}` }));
    await Promise.all(entries.map((e) => writer.create(e)));
    const ledger = createLedgerStore(opened.storage.db, sql);

    // Twelve rows and a miss in the same turn: one statement, each read its own row, as read alone.
    const missing = randomUUID();
    const found = await Promise.all([...entries.map((e) => ledger.findByLookupHash(e.lookupHash)), ledger.findByLookupHash(missing)]);
    assert.equal(statements.length, 1, 'thirteen reads, one statement');
    assert.equal(statements[0]!.match(/UNION ALL/g)?.length, 15, 'thirteen reads padded to a union of sixteen (a power of two)');
    assert.deepEqual(
      found.map((row) => row?.subject),
      [...entries.map((e) => e.subject), undefined],
    );
    assert.deepEqual(found[3], await writer.findByLookupHash(entries[3]!.lookupHash), 'the same row as an unbatched read, without the batch tag');
    assert.ok(!Object.hasOwn(found[0]!, 'tally_read'));

    // Reads made one after another are not held for each other: one statement each, as before.
    statements.length = 0;
    for (const e of entries.slice(0, 3)) assert.equal((await ledger.findByLookupHash(e.lookupHash))?.id, e.id);
    assert.equal(statements.length, 3);
    assert.ok(statements.every((text) => !text.includes('UNION ALL')));

    // A read whose parameter PostgreSQL refuses fails alone; the others of its batch are answered.
    statements.length = 0;
    const byCreated = `SELECT "id" FROM "token_entries" WHERE "lookup_hash" = ? AND "created_at" < ?`;
    const results = await Promise.allSettled([
      sql.get<{ id: string }>(byCreated, [entries[0]!.lookupHash, new Date('2027-01-01T00:00:00Z')]),
      sql.get<{ id: string }>(byCreated, [entries[1]!.lookupHash, 'not a date']),
      sql.get<{ id: string }>(byCreated, [entries[2]!.lookupHash, new Date('2027-01-01T00:00:00Z')]),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal((results[0] as PromiseFulfilledResult<{ id: string } | undefined>).value?.id, entries[0]!.id);
    assert.equal((results[2] as PromiseFulfilledResult<{ id: string } | undefined>).value?.id, entries[2]!.id);
    assert.equal((results[1] as PromiseRejectedResult).reason.code, '22007', 'its own invalid_datetime_format');
    assert.equal(statements.length, 1 + 3, 'the failed batch, then each read alone');

    // A statement PostgreSQL cannot take as a union (here: its closing semicolon, a syntax error inside
    // the union's parentheses) is answered read by read, and goes out alone from then on.
    statements.length = 0;
    const echo = `SELECT ? AS "echo";`;
    assert.deepEqual(await Promise.all(['a', 'b'].map((value) => sql.get<{ echo: string }>(echo, [value]))), [{ echo: 'a' }, { echo: 'b' }]);
    assert.equal(statements.length, 1 + 2, 'the refused union, then each read alone');
    statements.length = 0;
    assert.deepEqual(await Promise.all(['c', 'd'].map((value) => sql.get<{ echo: string }>(echo, [value]))), [{ echo: 'c' }, { echo: 'd' }]);
    assert.equal(statements.length, 2);
    assert.ok(statements.every((text) => !text.includes('UNION ALL')));

    // Writes that answer rows (RETURNING) are never batched: each runs once.
    statements.length = 0;
    const feed = await Promise.all(
      [1, 2].map(() => sql.get<{ id: number }>(`INSERT INTO "revocation_feed" ("event", "created_at") VALUES (?, ?) RETURNING "id"`, ['{}', new Date()])),
    );
    assert.equal(statements.length, 2);
    assert.notEqual(feed[0]!.id, feed[1]!.id);
  },
);

batchingTest('redemptions issued together go out as one statement; each entry is redeemed once, by the first ask for it', async ({ sql, statements }) => {
  const ledger = createLedgerStore(opened.storage.db, sql);
  const entries = Array.from({ length: 8 }, () => ledgerEntry({ type: 'refresh_token' }));
  await Promise.all(entries.map((e) => ledger.create(e)));
  await ledger.redeem(entries[7]!.lookupHash);

  statements.length = 0;
  const answers = await Promise.all([
    ...entries.slice(0, 6).map((e) => ledger.redeem(e.lookupHash)),
    // The same entry twice in the turn (one token used twice at once), one already used, one unknown.
    ledger.redeem(entries[0]!.lookupHash),
    ledger.redeem(entries[6]!.lookupHash),
    ledger.redeem(entries[6]!.lookupHash),
    ledger.redeem(entries[7]!.lookupHash),
    ledger.redeem(randomUUID()),
  ]);
  assert.equal(statements.length, 1, 'eleven redemptions, one statement');
  assert.deepEqual(answers, [true, true, true, true, true, true, false, true, false, false, false]);
  const rows = await opened.storage.db.tokenEntry.findMany({ where: { lookupHash: { in: entries.map((e) => e.lookupHash) } } });
  assert.ok(rows.every((row) => row.status === 'redeemed' && row.redeemedAt instanceof Date));

  // Alone, a redemption answers as before.
  const another = ledgerEntry({ type: 'refresh_token' });
  await ledger.create(another);
  assert.equal(await ledger.redeem(another.lookupHash), true);
  assert.equal(await ledger.redeem(another.lookupHash), false);
});
