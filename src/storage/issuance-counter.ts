import type { Redis } from 'ioredis';
import { SharedStoreUnavailable } from './unavailable.js';

/** Minutes a count is kept: the longest statistics window (a day) and a little more. */
export const COUNTED_MINUTES = 24 * 60 + 5;

/** The minute a time falls in, as the counter keys it: whole minutes since 1970. */
export const minuteOf = (ms: number): number => Math.floor(ms / 60_000);

/**
 * Stateless access tokens issued, per minute. They are never written anywhere at issuance (that is
 * their point), so the admin statistics count them here: in Redis (INCR and EXPIRE per minute, one
 * count for every replica on it) when REDIS_URL is set, else in this process alone.
 */
export interface IssuanceCounter {
  /** True when the counts are the deployment's (Redis), false when they are this process's. */
  readonly shared: boolean;
  /** One token issued now. Never throws and never waits: the token's answer does not depend on it. */
  count(): void;
  /** The counts of minutes `first` to `last` (minuteOf), in order. */
  perMinute(first: number, last: number): Promise<number[]>;
}

export function createMemoryIssuanceCounter(): IssuanceCounter {
  const counts = new Map<number, number>();
  return {
    shared: false,
    count() {
      const minute = minuteOf(Date.now());
      const current = counts.get(minute);
      if (current === undefined) for (const old of counts.keys()) if (old <= minute - COUNTED_MINUTES) counts.delete(old);
      counts.set(minute, (current ?? 0) + 1);
    },
    async perMinute(first, last) {
      const out: number[] = [];
      for (let minute = first; minute <= last; minute++) out.push(counts.get(minute) ?? 0);
      return out;
    },
  };
}

/** `onError` hears a failed count, at most once a minute (a Redis outage would otherwise log once per token). */
export function createRedisIssuanceCounter(redis: Redis, prefix: string, onError: (error: unknown) => void): IssuanceCounter {
  let lastErrorMinute = -1;
  const key = (minute: number) => `${prefix}${minute}`;
  return {
    shared: true,
    count() {
      const minute = minuteOf(Date.now());
      redis
        .multi()
        .incr(key(minute))
        .expire(key(minute), COUNTED_MINUTES * 60)
        .exec()
        .catch((error: unknown) => {
          if (minute === lastErrorMinute) return;
          lastErrorMinute = minute;
          onError(error);
        });
    },
    async perMinute(first, last) {
      const keys: string[] = [];
      for (let minute = first; minute <= last; minute++) keys.push(key(minute));
      try {
        return (await redis.mget(keys)).map((value) => Number(value ?? 0));
      } catch (error) {
        throw new SharedStoreUnavailable('Redis (stateless issuance counts)', error);
      }
    },
  };
}
