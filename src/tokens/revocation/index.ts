import type { EventEmitter } from 'node:events';
import type { Config } from '../../config/index.js';
import type { Logger } from '../../config/logger.js';
import type { CachedLedgerStore } from '../../storage/ledger-cache.js';
import type { RedisChannels } from '../../storage/redis.js';
import type { RevocationEventStore } from '../../storage/revocation-events.js';
import type { RevocationFeedStore } from '../../storage/revocation-feed.js';
import type { RevocationPassStore } from '../../storage/revocation-passes.js';
import type { RevokedTokenStore } from '../../storage/revoked-tokens.js';
import { createRevocationFeed, type RevocationFeed } from './feed.js';
import { createRevocation, type Revocation } from './revoke.js';

/*
 * Revocation, in one module:
 * - revoke.ts: a token (its ledger entry, or a stateless one's row in the revoked-token list), an
 *   entry by id (the admin API), or everything of a subject, client or grant (ledger entries at once,
 *   stateless tokens by a revocation event), with the bulk revocation's second pass recorded in the
 *   database;
 * - feed.ts: every revocation published, in the feed table (served by GET /revocations/stream,
 *   http/revocation-stream.ts) and on Redis, in the wire format of src/protocol/revocations.ts that
 *   the kits read;
 * - follow.ts: other processes' revocations drop the rows this process cached;
 * - second-passes.ts: every server process runs the second passes that are due.
 * Whether a token is active is the ledger manager's to say (../ledger-manager.ts), from what these record.
 */

export { createRevocation, type Revocation, type RevocationDependencies } from './revoke.js';
export { createRevocationFeed, type RevocationFeed } from './feed.js';
export { followRevocations } from './follow.js';
export { pollSecondPasses } from './second-passes.js';

export interface RevocationStores {
  entries: CachedLedgerStore;
  revokedTokens: RevokedTokenStore;
  revocationEvents: RevocationEventStore;
  revocationPasses: RevocationPassStore;
  revocationFeed: RevocationFeedStore;
}

/**
 * The process's revocation and its publication: each revocation is told to `events` (`revocation`,
 * a RevocationMessage; `tokens-revoked`, { mode, count }: metrics) and published on the feed; a
 * failed publication is logged, never thrown into the revocation (the feed's readers catch up).
 */
export function openRevocation({
  config,
  logger,
  events,
  redis,
  stores,
}: {
  config: Config;
  logger: Logger;
  events: EventEmitter;
  redis: RedisChannels | undefined;
  stores: RevocationStores;
}): {
  revocation: Revocation;
  feed: RevocationFeed;
} {
  const feed = createRevocationFeed({ store: stores.revocationFeed, issuer: config.issuer, redis, logger });
  const revocation = createRevocation({
    ...stores,
    config,
    publish: (message) => {
      events.emit('revocation', message);
      return feed.publish(message).catch((error: unknown) => logger.error({ err: error }, 'revocation not published'));
    },
    counted: (mode, count) => events.emit('tokens-revoked', { mode, count }),
  });
  return { revocation, feed };
}
