import type { Redis } from 'ioredis';
import { entryMac, entryMacMatches } from '../shared/entry-keys.js';

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

/**
 * Shared by every validator on the same Redis: entries with PX expiry, tags as sets. Each entry carries
 * a MAC (under `macKey`, derived from the client secret) over its Redis key, its result and its times:
 * an entry that another writer put there, altered, or copied from another key fails the check, is
 * reported to `onRejected` and read as absent. Its times are believed only once it passes.
 */
export function createRedisCache(redis: Redis, prefix: string, macKey: Buffer, onRejected: () => void): ValidationCache {
  const entryKey = (key: string) => `${prefix}e:${key}`;
  const tagKey = (tag: string) => `${prefix}t:${tag}`;
  const macOf = (key: string, value: CachedValidation, expiresAt: number) => [entryKey(key), value.result, value.storedAt, expiresAt, value.tags];
  return {
    async get(key) {
      const raw = await redis.get(entryKey(key));
      if (!raw) return undefined;
      let stored: CachedValidation & { expiresAt?: unknown; mac?: unknown };
      try {
        stored = JSON.parse(raw) as typeof stored;
        const { result, storedAt, expiresAt, tags, mac } = stored;
        if (
          typeof result?.active !== 'boolean' ||
          typeof storedAt !== 'number' ||
          typeof expiresAt !== 'number' ||
          !Array.isArray(tags) ||
          !entryMacMatches(macKey, macOf(key, { result, storedAt, tags }, expiresAt), mac)
        )
          throw new Error('not authentic');
      } catch {
        onRejected();
        return undefined;
      }
      if ((stored.expiresAt as number) <= Date.now()) return undefined;
      return { result: stored.result, storedAt: stored.storedAt, tags: stored.tags };
    },
    async set(key, value, ttlMs) {
      const px = Math.max(1, Math.floor(ttlMs));
      const expiresAt = Date.now() + px;
      const stored = { ...value, expiresAt, mac: entryMac(macKey, macOf(key, value, expiresAt)) };
      const pipeline = redis.multi().set(entryKey(key), JSON.stringify(stored), 'PX', px);
      for (const tag of value.tags) pipeline.sadd(tagKey(tag), key).pexpire(tagKey(tag), px, 'GT').pexpire(tagKey(tag), px, 'NX');
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
