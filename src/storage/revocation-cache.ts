import type { CacheStats } from '../lib/cache-stats.js';
import { createReadCache } from '../lib/read-cache.js';
import { NOT_CACHING, type ForgettingCache } from './forgetting-cache.js';
import type { RevocationEventRow, RevocationEventStore } from './revocation-events.js';
import type { RevokedTokenRow, RevokedTokenStore } from './revoked-tokens.js';

export interface RevocationCacheOptions {
  stats: CacheStats;
  /** How long an answer is kept at most (a listed token's row also no longer than the token lives). */
  ttlMs?: number;
  /** Answers kept at most, per store; 0 turns the cache off. */
  max?: number;
}

/** What a stateless access token is checked against, kept in memory: the revoked-token list and the revocation events. */
export interface RevocationCaches {
  revokedTokens: RevokedTokenStore & ForgettingCache;
  revocationEvents: RevocationEventStore & ForgettingCache;
}

/** The one key of a subject, client and grant (findMatching treats an empty value as an absent one). */
const scopeKey = (match: { subject?: string | undefined; clientId?: string | undefined; grantId?: string | undefined }) =>
  `${match.subject ?? ''}\x1f${match.clientId ?? ''}\x1f${match.grantId ?? ''}`;

/**
 * The answers a stateless access token's check reads (is it listed as revoked? which revocation events
 * could match its subject, client and grant?), kept in memory, so that a token introspected over and
 * over, or many tokens of one client, cost no read. Only reads asked with `cacheable` are kept: a
 * stateless access token's listing and its events change only by a revocation, and every revocation
 * reaches the cache: this process's writes through these stores, which drop what they touch once they
 * complete, and other processes' through `forget`/`forgetAll`, fed by Redis at once and by the
 * revocation feed within its poll interval (tokens/revocation/follow.ts), as for the ledger cache
 * (ledger-cache.ts). Refresh tokens are never asked with `cacheable`: another process's use of one
 * (single use) is not published. A read that a drop overlapped is answered but not kept.
 */
export function withRevocationCaches(
  stores: { revokedTokens: RevokedTokenStore; revocationEvents: RevocationEventStore },
  options: RevocationCacheOptions,
): RevocationCaches {
  const { stats, ttlMs = 60_000, max = 10_000 } = options;
  const { revokedTokens, revocationEvents } = stores;
  if (max <= 0) {
    return { revokedTokens: { ...revokedTokens, ...NOT_CACHING }, revocationEvents: { ...revocationEvents, ...NOT_CACHING } };
  }
  const listed = createReadCache<RevokedTokenRow | undefined>({ max, stats });
  const events = createReadCache<RevocationEventRow[]>({ max, stats });
  const keepFor = () => Date.now() + ttlMs;

  return {
    revokedTokens: {
      ...revokedTokens,
      enabled: true,
      forget: (lookupHash) => listed.forget(lookupHash),
      forgetAll: () => listed.forgetAll(),
      find(lookupHash, readOptions) {
        if (!readOptions?.cacheable) return revokedTokens.find(lookupHash);
        return listed.get(
          lookupHash,
          () => revokedTokens.find(lookupHash),
          (row) => (row ? Math.min(keepFor(), row.expiresAt.getTime()) : keepFor()),
        );
      },
      async add(lookupHash, type, reason, expiresAt) {
        try {
          return await revokedTokens.add(lookupHash, type, reason, expiresAt);
        } finally {
          listed.forget(lookupHash);
        }
      },
    },
    revocationEvents: {
      ...revocationEvents,
      enabled: true,
      // Which kept combinations an event matches is not worked out: a bulk revocation is rare, and drops them all.
      forget: () => undefined,
      forgetAll: () => events.forgetAll(),
      findMatching(match, readOptions) {
        if (!readOptions?.cacheable) return revocationEvents.findMatching(match);
        return events.get(scopeKey(match), () => revocationEvents.findMatching(match), keepFor);
      },
      async record(kind, value, revokedAt, expiresAt) {
        try {
          await revocationEvents.record(kind, value, revokedAt, expiresAt);
        } finally {
          events.forgetAll();
        }
      },
    },
  };
}
