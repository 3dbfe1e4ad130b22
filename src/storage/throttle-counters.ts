import type { Redis } from 'ioredis';
import { createRedisFallback } from './redis-fallback.js';
import { SharedStoreUnavailable } from './unavailable.js';
import type { Db } from './database.js';
import type { Sql } from './sql.js';

/** Failures counted under one key (see prisma/schema.prisma, ThrottleCounter). */
export interface ThrottleCount {
  failures: number;
  firstAt: Date;
  lastAt: Date;
  expiresAt: Date;
}

/**
 * Counters of failures, shared by every process on the same database or Redis. Dumb: what a count
 * means is the throttle's (tokens/throttle.ts). Keys are already hashes.
 */
export interface ThrottleCounterStore {
  /** The count under `key`, or undefined when there is none or it expired at `now`. */
  get(key: string, now: Date): Promise<ThrottleCount | undefined>;
  /**
   * One more failure at `now`, atomically (replicas failing together are all counted). An absent or
   * expired count starts over at 1 and expires `ttlMs` later; a live one expires `ttlMs` after this
   * failure when `sliding`, else when it would have.
   */
  increment(key: string, now: Date, ttlMs: number, sliding: boolean): Promise<ThrottleCount>;
  clear(key: string): Promise<void>;
  /** Deletes up to `size` counts expired before `before`; answers how many. */
  pruneBatch(before: Date, size: number): Promise<number>;
}

const COLUMNS = `"failures", "first_at" AS "firstAt", "last_at" AS "lastAt", "expires_at" AS "expiresAt"`;
const TABLE = `"throttle_counters"`;
const expired = `${TABLE}."expires_at" <= excluded."last_at"`;
const increment = (sliding: boolean) =>
  `INSERT INTO ${TABLE} ("key", "failures", "first_at", "last_at", "expires_at") VALUES (?, 1, ?, ?, ?)
   ON CONFLICT ("key") DO UPDATE SET
     "failures" = CASE WHEN ${expired} THEN 1 ELSE ${TABLE}."failures" + 1 END,
     "first_at" = CASE WHEN ${expired} THEN excluded."first_at" ELSE ${TABLE}."first_at" END,
     "expires_at" = ${sliding ? 'excluded."expires_at"' : `CASE WHEN ${expired} THEN excluded."expires_at" ELSE ${TABLE}."expires_at" END`},
     "last_at" = excluded."last_at"
   RETURNING ${COLUMNS}`;
const INCREMENT = { sliding: increment(true), fixed: increment(false) };

/** On SQLite or PostgreSQL: one upsert per failure (a sign-in already costs an argon2 hash). */
export function createThrottleCounterStore(db: Db, sql: Sql): ThrottleCounterStore {
  return {
    get(key, now) {
      // Asked on every client authentication: in the turn's shared snapshot (sql.ts ReadOptions).
      return sql.get<ThrottleCount>(`SELECT ${COLUMNS} FROM ${TABLE} WHERE "key" = ? AND "expires_at" > ?`, [key, now], { turnSnapshot: true });
    },

    async increment(key, now, ttlMs, sliding) {
      const row = await sql.get<ThrottleCount>(sliding ? INCREMENT.sliding : INCREMENT.fixed, [key, now, now, new Date(now.getTime() + ttlMs)]);
      return { ...row!, failures: Number(row!.failures) };
    },

    async clear(key) {
      await sql.run(`DELETE FROM ${TABLE} WHERE "key" = ?`, [key]);
    },

    async pruneBatch(before, size) {
      const rows = await db.throttleCounter.findMany({ where: { expiresAt: { lt: before } }, select: { key: true }, take: size });
      if (rows.length === 0) return 0;
      const { count } = await db.throttleCounter.deleteMany({ where: { key: { in: rows.map((r) => r.key) } } });
      return count;
    },
  };
}

// A hash per key (failures; first, last, expires: milliseconds), with the same meaning as a row;
// Redis deletes it when it expires. One script, so that concurrent failures from several replicas
// are each counted.
const INCREMENT_SCRIPT = `
local now = tonumber(ARGV[1])
local stored = redis.call('HMGET', KEYS[1], 'failures', 'first', 'expires')
local failures, first, expires = tonumber(stored[1]), stored[2], tonumber(stored[3])
if not failures or not expires or expires <= now then
  failures, first, expires = 1, ARGV[1], now + tonumber(ARGV[2])
else
  failures = failures + 1
  if ARGV[3] == '1' then expires = now + tonumber(ARGV[2]) end
end
redis.call('HSET', KEYS[1], 'failures', failures, 'first', first, 'last', ARGV[1], 'expires', expires)
redis.call('PEXPIRE', KEYS[1], expires - now)
return { failures, first, expires }`;

/** In Redis (REDIS_URL): keys under `prefix`, deleted by Redis when they expire, so nothing to prune. */
export function createRedisThrottleCounterStore(redis: Redis, prefix: string): ThrottleCounterStore {
  const keyOf = (key: string) => `${prefix}${key}`;
  // Redis away: the counts cannot be read or kept, and a sign-in is not let through unthrottled (503).
  const answered = <T>(call: Promise<T>): Promise<T> =>
    call.catch((error: unknown) => {
      throw new SharedStoreUnavailable('Redis (throttle counts)', error);
    });
  return {
    async get(key, now) {
      const fields = await answered(redis.hgetall(keyOf(key)));
      if (!fields.failures || !(Number(fields.expires) > now.getTime())) return undefined;
      return {
        failures: Number(fields.failures),
        firstAt: new Date(Number(fields.first)),
        lastAt: new Date(Number(fields.last)),
        expiresAt: new Date(Number(fields.expires)),
      };
    },

    async increment(key, now, ttlMs, sliding) {
      const [failures, first, expires] = (await answered(redis.eval(INCREMENT_SCRIPT, 1, keyOf(key), now.getTime(), ttlMs, sliding ? '1' : '0'))) as [
        number,
        string,
        number,
      ];
      return { failures, firstAt: new Date(Number(first)), lastAt: now, expiresAt: new Date(expires) };
    },

    async clear(key) {
      await answered(redis.del(keyOf(key)));
    },

    pruneBatch: () => Promise.resolve(0),
  };
}

/** Failures counted in two stores, as one count: they were counted at different times (before, during and after an outage). */
function together(a: ThrottleCount | undefined, b: ThrottleCount | undefined): ThrottleCount | undefined {
  if (!a || !b) return a ?? b;
  return {
    failures: a.failures + b.failures,
    firstAt: new Date(Math.min(a.firstAt.getTime(), b.firstAt.getTime())),
    lastAt: new Date(Math.max(a.lastAt.getTime(), b.lastAt.getTime())),
    expiresAt: new Date(Math.max(a.expiresAt.getTime(), b.expiresAt.getTime())),
  };
}

/**
 * Redis first, the database while Redis does not answer (storage/redis-fallback.ts): an outage of
 * Redis neither lets guessing through unthrottled nor refuses sign-ins and client authentication,
 * and failures counted in the database meanwhile still count once Redis is back.
 */
export function withFallbackStore(primary: ThrottleCounterStore, fallback: ThrottleCounterStore, onFallback: (error: unknown) => void): ThrottleCounterStore {
  const redis = createRedisFallback(onFallback, { isOutage: (error) => error instanceof SharedStoreUnavailable });
  /** The fallback's live count beside Redis's, while counts made during an outage may live. */
  const withOutageCounts = async (key: string, now: Date, count: ThrottleCount | undefined) =>
    redis.fallbackLive(now.getTime()) ? together(count, await fallback.get(key, now)) : count;
  return {
    async get(key, now) {
      const fromRedis = await redis.primary(() => primary.get(key, now));
      return fromRedis ? withOutageCounts(key, now, fromRedis.answer) : fallback.get(key, now);
    },
    async increment(key, now, ttlMs, sliding) {
      const fromRedis = await redis.primary(() => primary.increment(key, now, ttlMs, sliding));
      if (fromRedis) return (await withOutageCounts(key, now, fromRedis.answer))!;
      const count = await fallback.increment(key, now, ttlMs, sliding);
      redis.wroteToFallback(count.expiresAt);
      return count;
    },
    // Cleared in both: counts made during an outage stay in the fallback.
    async clear(key) {
      await Promise.all([redis.primary(() => primary.clear(key)), fallback.clear(key)]);
    },
    pruneBatch: (before, size) => fallback.pruneBatch(before, size),
  };
}
