import type { CacheStats } from './cache-stats.js';

export interface ReadCache<V> {
  /**
   * The kept value of `key`, else what `read` answers, kept until `keepUntil(value)` (epoch ms; or
   * not kept when that is undefined or past). A read that a `forget` of its key (or `forgetAll`)
   * overlapped is answered but not kept: it may hold the value as it was before the change.
   */
  get(key: string, read: () => Promise<V>, keepUntil: (value: V) => number | undefined): Promise<V>;
  /** Drops one key's value (a write changed it, here or elsewhere). */
  forget(key: string): void;
  /** Drops every value. */
  forgetAll(): void;
}

/** An in-process read-through cache that the writes changing its values empty; oldest dropped past `max`. */
export function createReadCache<V>({ max, stats }: { max: number; stats: CacheStats }): ReadCache<V> {
  const kept = new Map<string, { value: V; until: number }>();
  // The reads in flight, one mark each: dropping a key removes its mark, and a read whose mark is
  // gone when it completes is not kept.
  const reading = new Map<string, object>();
  return {
    async get(key, read, keepUntil) {
      const hit = kept.get(key);
      if (hit && hit.until > Date.now()) {
        stats.hits++;
        return hit.value;
      }
      if (hit) kept.delete(key);
      stats.misses++;
      const mark = {};
      reading.set(key, mark);
      let value: V;
      try {
        value = await read();
      } catch (error) {
        if (reading.get(key) === mark) reading.delete(key);
        throw error;
      }
      // Dropped while reading (or a later read of the key took over): answered, not kept.
      if (reading.get(key) !== mark) return value;
      reading.delete(key);
      const until = keepUntil(value);
      if (until !== undefined && until > Date.now()) {
        if (kept.size >= max) kept.delete(kept.keys().next().value!);
        kept.set(key, { value, until });
      }
      return value;
    },
    forget(key) {
      kept.delete(key);
      reading.delete(key);
    },
    forgetAll() {
      kept.clear();
      reading.clear();
    },
  };
}
