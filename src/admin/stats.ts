import type { z } from 'zod';
import type { Runtime } from '../runtime.js';
import { createTokenStatsStore, type BucketCount } from '../storage/token-stats.js';
import { TallyError } from '../lib/errors.js';
import { MAX_STATS_WINDOW, MIN_STATS_WINDOW, type statsView } from './schemas.js';

// The dashboard's numbers: access tokens issued and revoked per token mode over a recent window.

export type StatsView = z.output<typeof statsView>;
type PerMode = StatsView['totals']['issued'];

export const DEFAULT_STATS_WINDOW = 3600;
/** At most this many buckets: 60 s each, or a larger multiple of a minute (the stateless counter's unit). */
const MAX_BUCKETS = 120;

/** `window_seconds`: an integer from 60 to 86400, default 3600. */
export function parseStatsQuery(query: Record<string, unknown>): number {
  const raw = query.window_seconds;
  if (raw === undefined) return DEFAULT_STATS_WINDOW;
  const seconds = Number(raw);
  if (typeof raw !== 'string' || !/^\d{1,6}$/.test(raw) || seconds < MIN_STATS_WINDOW || seconds > MAX_STATS_WINDOW) {
    throw new TallyError(400, 'invalid_request', `must be an integer from ${MIN_STATS_WINDOW} to ${MAX_STATS_WINDOW}`, { field: 'window_seconds' });
  }
  return seconds;
}

const zero = (): PerMode => ({ reference: 0, jwt: 0, stateless: 0 });

/**
 * Buckets end with the one holding now, aligned to whole multiples of their size, so that each is a
 * run of whole minutes; together they cover the window (up to one bucket more, the current one's
 * elapsed part). Issued: reference and jwt access tokens from their ledger entries by format, stateless
 * ones from the issuance counter. Revoked: ledger entries revoked in the window by format, stateless
 * tokens revoked one by one (the revoked list; a bulk revocation's stateless tokens are counted nowhere).
 */
export async function tokenStats(runtime: Pick<Runtime, 'sql' | 'statelessIssued'>, windowSeconds: number): Promise<StatsView> {
  const bucketSeconds = 60 * Math.ceil(windowSeconds / (MAX_BUCKETS * 60));
  const count = Math.ceil(windowSeconds / bucketSeconds);
  const endSeconds = (Math.floor(Date.now() / 1000 / bucketSeconds) + 1) * bucketSeconds;
  const startSeconds = endSeconds - count * bucketSeconds;
  const from = new Date(startSeconds * 1000);
  const to = new Date(endSeconds * 1000);
  const store = createTokenStatsStore(runtime.sql);
  const [issued, revoked, revokedStateless, statelessPerMinute, revocationsLive] = await Promise.all([
    store.issuedAccessTokens(from, to, bucketSeconds),
    store.revokedAccessTokens(from, to, bucketSeconds),
    store.revokedStatelessAccessTokens(from, to, bucketSeconds),
    runtime.statelessIssued.perMinute(startSeconds / 60, endSeconds / 60 - 1),
    store.feedEvents(from, to),
  ]);
  const buckets = Array.from({ length: count }, (_, i) => ({
    start: new Date((startSeconds + i * bucketSeconds) * 1000).toISOString(),
    issued: zero(),
    revoked: zero(),
  }));
  const add = (side: 'issued' | 'revoked', rows: BucketCount[]) => {
    for (const { bucket, format, n } of rows) if (buckets[bucket]) buckets[bucket][side][format] += n;
  };
  add('issued', issued);
  add('revoked', [...revoked, ...revokedStateless]);
  const minutesPerBucket = bucketSeconds / 60;
  statelessPerMinute.forEach((n, minute) => {
    buckets[Math.floor(minute / minutesPerBucket)]!.issued.stateless += n;
  });
  const totals = { issued: zero(), revoked: zero() };
  for (const bucket of buckets)
    for (const side of ['issued', 'revoked'] as const) for (const mode of ['reference', 'jwt', 'stateless'] as const) totals[side][mode] += bucket[side][mode];
  return {
    window_seconds: windowSeconds,
    bucket_seconds: bucketSeconds,
    buckets,
    totals,
    revocations_live: revocationsLive,
    stateless_counted: runtime.statelessIssued.shared ? 'shared' : 'this_process',
  };
}
