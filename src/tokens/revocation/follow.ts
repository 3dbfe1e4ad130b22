import type { CachedLedgerStore } from '../../storage/ledger-cache.js';
import type { RedisChannels } from '../../storage/redis.js';
import { decodeFeedEvent, revocationChannel, type RevocationMessage } from '../../protocol/revocations.js';
import type { RevocationFeed } from './feed.js';

interface FollowDependencies {
  ledger: CachedLedgerStore;
  feed: RevocationFeed;
  issuer: string;
  redis: RedisChannels | undefined;
}

/**
 * Revocations made by other processes (replicas, or the same SQLite file's other servers) drop the
 * rows this process cached: at once through Redis when it is configured, and in any case within the
 * revocation feed's poll interval (200 ms) through the database, which also covers a Redis message
 * lost to a reconnection. Returns the function that stops following.
 */
export function followRevocations({ ledger, feed, issuer, redis }: FollowDependencies): () => void {
  const forget = (event: RevocationMessage) => (event.type === 'token' ? ledger.forget(event.jti_hash) : ledger.forgetAll());
  const unsubscribe = feed.subscribe(({ event }) => forget(event));
  const stopRedis = redis?.subscribe(revocationChannel(issuer), (message) => {
    const decoded = decodeFeedEvent(message);
    // Not a feed event: drop everything rather than keep what it may have meant to revoke.
    if (decoded) forget(decoded.event);
    else ledger.forgetAll();
  });
  return () => {
    unsubscribe();
    stopRedis?.();
  };
}
