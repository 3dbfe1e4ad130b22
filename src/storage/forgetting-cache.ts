/**
 * A cache of database answers that other processes' revocations empty (tokens/revocation/follow.ts
 * feeds it from Redis and the revocation feed): the ledger cache, and the stateless tokens' revoked
 * list and revocation events (ledger-cache.ts, revocation-cache.ts).
 */
export interface ForgettingCache {
  /** False when the cache is off (then there is nothing for other processes' revocations to drop). */
  enabled: boolean;
  /** Drops what is kept about one token (a revocation seen elsewhere: its lookup hash). */
  forget(lookupHash: string): void;
  /** Drops everything (a bulk revocation seen elsewhere). */
  forgetAll(): void;
}

/** What a store turned off as a cache (max 0: tests of the stores beneath) answers. */
export const NOT_CACHING: ForgettingCache = Object.freeze({ enabled: false, forget: () => undefined, forgetAll: () => undefined });
