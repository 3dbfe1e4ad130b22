import type { Redis } from 'ioredis';

/** A cached validation and what revocation events can match it by. */
export interface CachedValidation {
  result: Record<string, unknown> & { active: boolean };
  /** When it was computed (ms): without a live revocation feed only fresh entries are trusted. */
  storedAt: number;
  /** Index keys: `jti:<sha256 of jti>`, `sub:<subject>`, `client:<client_id>`, `grant:<grant_id>`. */
  tags: string[];
}

export interface ValidationCache {
  get(key: string): Promise<CachedValidation | undefined>;
  set(key: string, value: CachedValidation, ttlMs: number): Promise<void>;
  /** Removes every entry carrying one of the tags. */
  evict(tags: string[]): Promise<void>;
  close(): Promise<void>;
}

/** In-process LRU with per-entry expiry and a tag index for eviction. */
export function createMemoryCache(maxEntries = 10_000): ValidationCache {
  const entries = new Map<string, { value: CachedValidation; expiresAt: number }>();
  const byTag = new Map<string, Set<string>>();

  function remove(key: string) {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    for (const tag of entry.value.tags) {
      const keys = byTag.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) byTag.delete(tag);
    }
  }

  return {
    async get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        remove(key);
        return undefined;
      }
      entries.delete(key);
      entries.set(key, entry); // most recently used last
      return entry.value;
    },
    async set(key, value, ttlMs) {
      remove(key);
      if (entries.size >= maxEntries) remove(entries.keys().next().value!);
      entries.set(key, { value, expiresAt: Date.now() + ttlMs });
      for (const tag of value.tags) {
        if (!byTag.has(tag)) byTag.set(tag, new Set());
        byTag.get(tag)!.add(key);
      }
    },
    async evict(tags) {
      for (const tag of tags) for (const key of [...(byTag.get(tag) ?? [])]) remove(key);
    },
    async close() {
      entries.clear();
      byTag.clear();
    },
  };
}

/** Shared by every validator on the same Redis: entries with PX expiry, tags as sets. */
export function createRedisCache(redis: Redis, prefix: string): ValidationCache {
  const entryKey = (key: string) => `${prefix}e:${key}`;
  const tagKey = (tag: string) => `${prefix}t:${tag}`;
  return {
    async get(key) {
      const raw = await redis.get(entryKey(key));
      return raw ? (JSON.parse(raw) as CachedValidation) : undefined;
    },
    async set(key, value, ttlMs) {
      const pipeline = redis.multi().set(entryKey(key), JSON.stringify(value), 'PX', Math.max(1, Math.floor(ttlMs)));
      for (const tag of value.tags)
        pipeline
          .sadd(tagKey(tag), key)
          .pexpire(tagKey(tag), Math.max(1, Math.floor(ttlMs)), 'GT')
          .pexpire(tagKey(tag), Math.max(1, Math.floor(ttlMs)), 'NX');
      await pipeline.exec();
    },
    async evict(tags) {
      for (const tag of tags) {
        const keys = await redis.smembers(tagKey(tag));
        const pipeline = redis.multi().del(tagKey(tag));
        for (const key of keys) pipeline.del(entryKey(key));
        await pipeline.exec();
      }
    },
    async close() {},
  };
}
