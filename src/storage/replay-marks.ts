import type { Redis } from 'ioredis';
import type { Sql } from './sql.js';

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

/** In the database every replica shares. */
export function createReplayMarkStore(sql: Sql): ReplayMarkStore {
  return {
    async mark(key, expiresAt) {
      return (await sql.run(MARK, [key, expiresAt, new Date()])) === 1;
    },
    pruneBatch: (before, batchSize) => sql.run(PRUNE, [before, batchSize]),
  };
}

/**
 * In Redis (REDIS_URL): `SET NX PX`, deleted by Redis when it expires. Redis not answering: marked in
 * the database instead (`onFallback` is told), so that a proof is neither refused nor let through twice
 * by this replica meanwhile.
 */
export function createRedisReplayMarkStore(redis: Redis, prefix: string, fallback: ReplayMarkStore, onFallback: (error: unknown) => void): ReplayMarkStore {
  return {
    async mark(key, expiresAt) {
      const ttlMs = Math.max(1, expiresAt.getTime() - Date.now());
      try {
        return (await redis.set(`${prefix}${key}`, '1', 'PX', ttlMs, 'NX')) === 'OK';
      } catch (error) {
        onFallback(error);
        return fallback.mark(key, expiresAt);
      }
    },
    // Marks made in the database while Redis did not answer.
    pruneBatch: (before, batchSize) => fallback.pruneBatch(before, batchSize),
  };
}
