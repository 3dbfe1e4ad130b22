import type { RedisChannels } from '../../storage/redis.js';
import type { ForgettingCache } from '../../storage/forgetting-cache.js';
import { decodeFeedEvent, revocationChannel, type RevocationMessage } from '../../protocol/revocations.js';
import type { RevocationFeed } from './feed.js';

interface FollowDependencies {
  /** The caches other processes' revocations empty: the ledger cache, the stateless tokens' revoked list and revocation events. */
  caches: ForgettingCache[];
  feed: RevocationFeed;
  issuer: string;
  redis: RedisChannels | undefined;
}

/**
 * Revocations made by other processes (replicas, or the same SQLite file's other servers) drop what
 * this process cached: at once through Redis when it is configured, and in any case within the
 * revocation feed's poll interval (200 ms) through the database, which also covers a Redis message
 * lost to a reconnection. Returns the function that stops following.
 */
export function followRevocations({ caches, feed, issuer, redis }: FollowDependencies): () => void {
  const forget = (event: RevocationMessage) => {
    for (const cache of caches) {
      if (event.type === 'token') cache.forget(event.jti_hash);
      else cache.forgetAll();
    }
  };
  const forgetAll = () => {
    for (const cache of caches) cache.forgetAll();
  };
  const unsubscribe = feed.subscribe(({ event }) => forget(event));
  const stopRedis = redis?.subscribe(revocationChannel(issuer), (message) => {
    const decoded = decodeFeedEvent(message);
    // Not a feed event: drop everything rather than keep what it may have meant to revoke.
    if (decoded) forget(decoded.event);
    else forgetAll();
  });
  return () => {
    unsubscribe();
    stopRedis?.();
  };
}
