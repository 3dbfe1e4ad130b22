import type { CacheStats } from '../lib/cache-stats.js';
import type { LedgerRow, LedgerStore } from './ledger.js';

export interface LedgerCacheOptions {
  stats: CacheStats;
  /** How long a row is kept at most (it is also dropped when its token expires). */
  ttlMs?: number;
  /** Rows kept at most; 0 turns the cache off. */
  max?: number;
}

export type CachedLedgerStore = LedgerStore & {
  /** Drops one entry's row (a revocation seen elsewhere: another replica, the revocation feed). */
  forget(lookupHash: string): void;
  /** Drops every row (a bulk revocation seen elsewhere). */
  forgetAll(): void;
};

/**
 * Live access-token rows kept in memory, so that a token introspected or validated over and over
 * reads the database once. Access tokens change only by revocation (and expire by the clock), and
 * every change reaches the cache: this process's own writes through this store, which drop what they
 * touch once they complete, and other processes' revocations through `forget`/`forgetAll` (fed by
 * Redis and by the revocation feed). A read that overlapped any write or invalidation is answered but
 * not kept, since it may hold the row as it was before. Refresh tokens, codes and anything not live
 * are never kept: their reads decide single use.
 */
export function withLedgerCache(store: LedgerStore, { stats, ttlMs = 60_000, max = 10_000 }: LedgerCacheOptions): CachedLedgerStore {
  if (max <= 0) return { ...store, forget: () => undefined, forgetAll: () => undefined };
  const rows = new Map<string, { row: LedgerRow; until: number }>();
  let generation = 0;

  const forget = (lookupHash: string) => {
    generation++;
    rows.delete(lookupHash);
  };
  const forgetAll = () => {
    generation++;
    rows.clear();
  };
  /** Runs a write; what it touches is dropped before and after it (the read it races is then not kept). */
  async function writing<T>(drop: () => void, write: () => Promise<T>): Promise<T> {
    drop();
    try {
      return await write();
    } finally {
      drop();
    }
  }

  return {
    ...store,
    forget,
    forgetAll,

    async findByLookupHash(lookupHash) {
      const cached = rows.get(lookupHash);
      if (cached && cached.until > Date.now()) {
        stats.hits++;
        return cached.row;
      }
      if (cached) rows.delete(lookupHash);
      stats.misses++;
      const readAt = generation;
      const row = await store.findByLookupHash(lookupHash);
      if (row?.type === 'access_token' && row.status === 'valid' && readAt === generation) {
        if (rows.size >= max) rows.delete(rows.keys().next().value!);
        rows.set(lookupHash, { row, until: Math.min(Date.now() + ttlMs, row.expiresAt.getTime()) });
      }
      return row;
    },

    upsert: (entry) => writing(() => forget(entry.lookupHash), () => store.upsert(entry)),
    create: (entry) => writing(() => forget(entry.lookupHash), () => store.create(entry)),
    redeem: (lookupHash) => writing(() => forget(lookupHash), () => store.redeem(lookupHash)),
    revokeByLookupHash: (lookupHash) => writing(() => forget(lookupHash), () => store.revokeByLookupHash(lookupHash)),
    // By id: which row that is shows only afterwards; dropping everything is simpler and as cheap.
    revokeById: (id) => writing(forgetAll, () => store.revokeById(id)),
    deactivate: (scope, at, type) => writing(forgetAll, () => store.deactivate(scope, at, type)),
    pruneBatch: (before, batchSize) => writing(forgetAll, () => store.pruneBatch(before, batchSize)),
  };
}
