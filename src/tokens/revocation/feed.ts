import { EventEmitter } from 'node:events';
import type { Logger } from '../../config/logger.js';
import { encodeFeedEvent, revocationChannel, type FeedEvent, type RevocationMessage } from '../../protocol/revocations.js';
import type { RedisChannels } from '../../storage/redis.js';
import type { RevocationFeedStore } from '../../storage/revocation-feed.js';

const POLL_MS = 200;
const RECENT_IDS = 2000;

/**
 * Publishes every revocation: appended to the feed table (so any replica's stream, and a client
 * resuming with Last-Event-ID, sees it), and on Redis pub/sub when configured. Streams in this
 * process are fed by one poller of the table, running only while someone listens.
 */
export function createRevocationFeed({
  store,
  issuer,
  redis,
  logger,
}: {
  store: RevocationFeedStore;
  issuer: string;
  redis?: RedisChannels | undefined;
  logger: Logger;
}) {
  const local = new EventEmitter().setMaxListeners(0);
  let timer: NodeJS.Timeout | undefined;
  // Ids at or below `floor` existed before this poller started: a live stream does not replay them.
  let floor = -1;
  let highest = -1;
  const delivered = new Set<number>();
  // Told once when polling starts to fail (the database is away, say) and once when it works again.
  let failing = false;
  let starting: Promise<void> | undefined;

  /** Reads where live events begin, once per run of the poller; a subscriber waits for it before counting on live events. */
  function start(): Promise<void> {
    if (floor >= 0) return Promise.resolve();
    starting ??= store
      .latestId()
      .then((id) => {
        floor = highest = id;
      })
      .finally(() => {
        starting = undefined;
      });
    return starting;
  }

  async function poll() {
    try {
      await start();
      // Re-read a little behind the highest id seen: on PostgreSQL ids can commit out of order.
      const rows = await store.listAfter(Math.max(0, highest - 100), 1000);
      for (const row of rows) {
        if (row.id <= floor || delivered.has(row.id)) continue;
        delivered.add(row.id);
        if (delivered.size > RECENT_IDS) delivered.delete(delivered.values().next().value!);
        highest = Math.max(highest, row.id);
        local.emit('event', { id: row.id, event: JSON.parse(row.event) } satisfies FeedEvent);
      }
      if (failing) logger.info('revocation feed poll works again');
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ err: error }, `revocation feed poll failed; retrying every ${POLL_MS} ms`);
      failing = true;
    }
    if (local.listenerCount('event') > 0) {
      timer = setTimeout(poll, POLL_MS);
    } else {
      timer = undefined;
      floor = -1;
    }
  }

  return {
    async publish(message: RevocationMessage): Promise<void> {
      const row = await store.append(message);
      await redis?.publish(revocationChannel(issuer), encodeFeedEvent({ id: row.id, event: message }));
    },

    /**
     * Live events: every revocation committed after `following()` resolves, and any earlier one the poller had
     * not emitted yet (a resuming stream reads `backlog` first). Returns the unsubscribe function.
     */
    subscribe(listener: (event: FeedEvent) => void): () => void {
      local.on('event', listener);
      if (!timer) timer = setTimeout(poll, 0);
      return () => local.off('event', listener);
    },

    /**
     * Resolves once the poller knows where its live events begin (a database read when it was idle), so a
     * revocation made after this cannot be missed; rejects when that read fails.
     */
    following: (): Promise<void> => start(),
    latestId: () => store.latestId(),

    backlog: (afterId: number, limit = 10_000) =>
      store.listAfter(afterId, limit).then((rows) => rows.map((r) => ({ id: r.id, event: JSON.parse(r.event) as RevocationMessage }))),

    async close() {
      clearTimeout(timer);
      local.removeAllListeners();
    },
  };
}

export type RevocationFeed = ReturnType<typeof createRevocationFeed>;
