import type { Redis } from 'ioredis';
import { createRedisFallback } from './redis-fallback.js';
import type { Sql } from './sql.js';
import { createTurnBatch, type BatchedAsk } from './turn-batch.js';

/**
 * One-time marks (a DPoP proof's or a client assertion's `jti`, a passkey challenge; hashed by the caller): the first
 * `mark` of a key until it expires answers true, every other false, whichever replica asks. One
 * atomic insert-if-absent each, never a read and then a write (two replicas could both read "absent").
 */
export interface ReplayMarkStore {
  mark(key: string, expiresAt: Date): Promise<boolean>;
  /** Deletes up to `batchSize` marks that expired before `before`; returns how many (none in Redis, which expires them). */
  pruneBatch(before: Date, batchSize: number): Promise<number>;
}

// A table of their own (migration 0012): the key and its expiry, one b-tree write per mark. An expired
// mark may be taken again: the conflict updates only a row whose time is up.
const MARK = `INSERT INTO "replay_marks" ("key", "expires_at") VALUES (?, ?)
  ON CONFLICT ("key") DO UPDATE SET "expires_at" = excluded."expires_at" WHERE "replay_marks"."expires_at" <= ?`;
// No index on the expiry: the scan stops after `batchSize` expired rows, and the table holds little else.
const PRUNE = `DELETE FROM "replay_marks" WHERE "key" IN (SELECT "key" FROM "replay_marks" WHERE "expires_at" < ? LIMIT ?)`;

// PostgreSQL: the marks asked for in one turn of the event loop, in one statement (one round trip and
// one commit instead of one each); RETURNING names the keys it marked. Sorted, so that two replicas'
// statements sharing keys (a proof replayed to both at once) take their row locks in the same order.
const MARK_MANY = `INSERT INTO "replay_marks" ("key", "expires_at")
  SELECT "key", "expires_at" FROM json_to_recordset(?::json) AS "marks"("key" text, "expires_at" timestamp(3))
  ON CONFLICT ("key") DO UPDATE SET "expires_at" = excluded."expires_at" WHERE "replay_marks"."expires_at" <= ?
  RETURNING "key"`;
const MAX_BATCH = 200;

type Mark = { key: string; expiresAt: Date };

/** In the database every replica shares. */
export function createReplayMarkStore(sql: Sql): ReplayMarkStore {
  const markOne = async (key: string, expiresAt: Date) => (await sql.run(MARK, [key, expiresAt, new Date()])) === 1;
  const pruneBatch = (before: Date, batchSize: number) => sql.run(PRUNE, [before, batchSize]);
  // SQLite: the writes of a turn already share one commit (sql.ts).
  if (sql.dialect === 'sqlite') return { mark: markOne, pruneBatch };

  const markInTurn = createTurnBatch<Mark, boolean>(async (asks) => {
    const first = new Map<string, BatchedAsk<Mark, boolean>>();
    for (const ask of asks) if (!first.has(ask.ask.key)) first.set(ask.ask.key, ask);
    const keys = [...first.keys()].sort();
    const rows = await sql.all<{ key: string }>(MARK_MANY, [
      JSON.stringify(keys.map((key) => ({ key, expires_at: first.get(key)!.ask.expiresAt.toISOString() }))),
      new Date(),
    ]);
    const marked = new Set(rows.map((row) => row.key));
    // The same key asked for twice in one turn: the first ask may win, the others never do.
    for (const ask of asks) ask.resolve(first.get(ask.ask.key) === ask && marked.has(ask.ask.key));
  }, MAX_BATCH);
  return {
    // A NUL would not survive the JSON: such a key (none is made here: keys are hashes) goes alone.
    mark: (key, expiresAt) => (key.includes('\0') ? markOne(key, expiresAt) : markInTurn({ key, expiresAt })),
    pruneBatch,
  };
}

/**
 * In Redis (REDIS_URL): `SET NX PX`, deleted by Redis when it expires. Redis not answering: marked in
 * the database instead (storage/redis-fallback.ts; `onFallback` is told), so that a proof is neither
 * refused nor let through twice by this replica meanwhile; and once Redis is back, a key must be new to
 * both for as long as marks made in the database may live (a proof used during the outage stays used).
 */
export function createRedisReplayMarkStore(redis: Redis, prefix: string, fallback: ReplayMarkStore, onFallback: (error: unknown) => void): ReplayMarkStore {
  const outage = createRedisFallback(onFallback);
  return {
    async mark(key, expiresAt) {
      const ttlMs = Math.max(1, expiresAt.getTime() - Date.now());
      const fromRedis = await outage.primary(() => redis.set(`${prefix}${key}`, '1', 'PX', ttlMs, 'NX'));
      if (fromRedis) {
        if (fromRedis.answer !== 'OK') return false;
        // Used during the outage, in the database: used.
        return outage.fallbackLive() ? fallback.mark(key, expiresAt) : true;
      }
      outage.wroteToFallback(expiresAt);
      return fallback.mark(key, expiresAt);
    },
    // Marks made in the database while Redis did not answer.
    pruneBatch: (before, batchSize) => fallback.pruneBatch(before, batchSize),
  };
}
