import type { Redis } from 'ioredis';
import type { Sql } from './sql.js';

/**
 * One-time marks (a DPoP proof's or a client assertion's `jti`, hashed by the caller): the first
 * `mark` of a key until it expires answers true, every other false, whichever replica asks. One
 * atomic insert-if-absent each, never a read and then a write (two replicas could both read "absent").
 */
export interface ReplayMarkStore {
  mark(key: string, expiresAt: Date): Promise<boolean>;
}

// In oidc-provider's records table, under its model name, so that pruning deletes expired marks. An
// expired mark may be taken again: the conflict updates only a row whose time is up.
const MARK = `INSERT INTO "provider_records" ("model", "id", "payload", "expires_at") VALUES ('ReplayDetection', ?, '', ?)
  ON CONFLICT ("model", "id") DO UPDATE SET "expires_at" = excluded."expires_at", "consumed_at" = NULL
  WHERE "provider_records"."expires_at" <= ?`;

/** In the database every replica shares. */
export function createReplayMarkStore(sql: Sql): ReplayMarkStore {
  return {
    async mark(key, expiresAt) {
      return (await sql.run(MARK, [key, expiresAt, new Date()])) === 1;
    },
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
  };
}
