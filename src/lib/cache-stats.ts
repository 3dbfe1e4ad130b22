/** Hits and misses of one in-process cache, read by /metrics. */
export interface CacheStats {
  hits: number;
  misses: number;
}

export function createCacheStats(): CacheStats {
  return { hits: 0, misses: 0 };
}
