import type { CacheStats } from '../lib/cache-stats.js';
import { createReadCache } from '../lib/read-cache.js';
import { NOT_CACHING, type ForgettingCache } from './forgetting-cache.js';
import type { LedgerRow, LedgerStore } from './ledger.js';

export interface LedgerCacheOptions {
  stats: CacheStats;
  /** How long a row is kept at most (it is also dropped when its token expires). */
  ttlMs?: number;
  /** Rows kept at most; 0 turns the cache off. */
  max?: number;
}

export type CachedLedgerStore = LedgerStore & ForgettingCache;

/**
 * Live access-token rows kept in memory, so that a token introspected or validated over and over
 * reads the database once. Access tokens change only by revocation (and expire by the clock), and
 * every change reaches the cache: this process's writes through this store, which drop what they
 * touch once they complete, and other processes' revocations through `forget`/`forgetAll` (fed by
 * Redis and by the revocation feed). A read of a row that was dropped while it ran is answered but
 * not kept, since it may hold the row as it was before. Refresh tokens, codes and anything not live
 * are never kept: their reads decide single use. New entries (`create`) and pruned ones (expired,
 * which the cache never serves) need no dropping.
 */
export function withLedgerCache(store: LedgerStore, { stats, ttlMs = 60_000, max = 10_000 }: LedgerCacheOptions): CachedLedgerStore {
  if (max <= 0) return { ...store, ...NOT_CACHING };
  const rows = createReadCache<LedgerRow | null>({ max, stats });
  const forget = (lookupHash: string) => rows.forget(lookupHash);
  const forgetAll = () => rows.forgetAll();
  /** Runs a write, then drops what it touched (and so any read of it that overlapped the write). */
  async function writing<T>(drop: () => void, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      drop();
    }
  }

  return {
    ...store,
    enabled: true,
    forget,
    forgetAll,

    findByLookupHash: (lookupHash) =>
      rows.get(
        lookupHash,
        () => store.findByLookupHash(lookupHash),
        (row) => (row?.type === 'access_token' && row.status === 'valid' ? Math.min(Date.now() + ttlMs, row.expiresAt.getTime()) : undefined),
      ),
    upsert: (entry) =>
      writing(
        () => forget(entry.lookupHash),
        () => store.upsert(entry),
      ),
    redeem: (lookupHash) =>
      writing(
        () => forget(lookupHash),
        () => store.redeem(lookupHash),
      ),
    revokeByLookupHash: (lookupHash) =>
      writing(
        () => forget(lookupHash),
        () => store.revokeByLookupHash(lookupHash),
      ),
    async revokeById(id) {
      const result = await store.revokeById(id);
      if (result) forget(result.row.lookupHash);
      return result;
    },
    deactivate: (scope, at, type) => writing(forgetAll, () => store.deactivate(scope, at, type)),
  };
}
