import type { Redis } from 'ioredis';
import { createRedisFallback } from './redis-fallback.js';
import type { Sql } from './sql.js';
import { createClaimTurnBatch } from './turn-batch.js';

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

/** The marks in the database, which can also list its live ones (those made while Redis did not answer). */
export interface DatabaseReplayMarkStore extends ReplayMarkStore {
  /** Up to `limit` marks live at `now`, in key order, after the key `after`. */
  live(now: Date, limit: number, after?: string): Promise<Mark[]>;
}

const LIVE = `SELECT "key", "expires_at" AS "expiresAt" FROM "replay_marks" WHERE "expires_at" > ? AND "key" > ? ORDER BY "key" LIMIT ?`;

/** In the database every replica shares. */
export function createReplayMarkStore(sql: Sql): DatabaseReplayMarkStore {
  const markOne = async (key: string, expiresAt: Date) => (await sql.run(MARK, [key, expiresAt, new Date()])) === 1;
  const pruneBatch = (before: Date, batchSize: number) => sql.run(PRUNE, [before, batchSize]);
  const live = (now: Date, limit: number, after = '') => sql.all<Mark>(LIVE, [now, after, limit]);
  // SQLite: the writes of a turn already share one commit (sql.ts).
  if (sql.dialect === 'sqlite') return { mark: markOne, pruneBatch, live };

  const markInTurn = createClaimTurnBatch<Mark>(
    (mark) => mark.key,
    async (marks) => {
      const sorted = [...marks].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const rows = await sql.all<{ key: string }>(MARK_MANY, [
        JSON.stringify(sorted.map(({ key, expiresAt }) => ({ key, expires_at: expiresAt.toISOString() }))),
        new Date(),
      ]);
      return new Set(rows.map((row) => row.key));
    },
    MAX_BATCH,
  );
  return {
    // A NUL would not survive the JSON: such a key (none is made here: keys are hashes) goes alone.
    mark: (key, expiresAt) => (key.includes('\0') ? markOne(key, expiresAt) : markInTurn({ key, expiresAt })),
    pruneBatch,
    live,
  };
}

/** What the Redis store tells of an outage: when it begins, and the copy of its marks once Redis is back. */
export interface ReplayMarkOutageEvents {
  fallback(error: unknown): void;
  copied(count: number): void;
  copyFailed(error: unknown): void;
}

const COPY_BATCH = 1_000;

/**
 * In Redis (REDIS_URL): `SET NX PX`, deleted by Redis when it expires. Redis not answering: marked in
 * the database instead (storage/redis-fallback.ts; `events.fallback` is told), so that a proof is
 * neither refused nor let through twice by this replica meanwhile. Once Redis is back:
 * - a key must be new to both for as long as marks made in the database may live (a proof used during
 *   the outage stays used), on this replica;
 * - the live marks of the database are copied into Redis, so that a replica that never saw the outage
 *   (Redis unreachable from this one only) refuses them too.
 */
export function createRedisReplayMarkStore(redis: Redis, prefix: string, fallback: DatabaseReplayMarkStore, events: ReplayMarkOutageEvents): ReplayMarkStore {
  /** A mark's SET in Redis (on the connection or in a pipeline): only if absent, gone when it expires. */
  const markSet = (key: string, expiresAt: Date) => [`${prefix}${key}`, '1', 'PX', Math.max(1, expiresAt.getTime() - Date.now()), 'NX'] as const;
  async function copyToRedis() {
    const now = new Date();
    let copied = 0;
    for (let after = ''; ; ) {
      const marks = await fallback.live(now, COPY_BATCH, after);
      if (marks.length === 0) break;
      const pipeline = redis.pipeline();
      for (const { key, expiresAt } of marks) pipeline.set(...markSet(key, expiresAt));
      const failed = (await pipeline.exec())?.find(([error]) => error)?.[0];
      if (failed) throw failed;
      copied += marks.length;
      after = marks.at(-1)!.key;
      if (marks.length < COPY_BATCH) break;
    }
    events.copied(copied);
  }
  const outage = createRedisFallback(events.fallback, { onRecovered: () => void copyToRedis().catch(events.copyFailed) });
  return {
    async mark(key, expiresAt) {
      const fromRedis = await outage.primary(() => redis.set(...markSet(key, expiresAt)));
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
