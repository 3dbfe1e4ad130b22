import type { Redis } from 'ioredis';
import type { Logger } from '../config/logger.js';

/**
 * The process's Redis: one connection that publishes and one that subscribes (a subscribed
 * connection can do nothing else), shared by every channel the server uses (client changes,
 * revocations). Both connect on first use.
 */
export interface RedisChannels {
  /**
   * Publishes a fire-and-forget message; a failure is logged, never thrown. Resolves once Redis has
   * handed it to the subscribers (so that a write answered after it is already seen by every replica),
   * or after `timeoutMs` when given and Redis does not answer by then.
   */
  publish(channel: string, message: string, options?: { timeoutMs?: number }): Promise<void>;
  /** Calls `handler` with every message on `channel`; returns the function that stops it. */
  subscribe(channel: string, handler: (message: string) => void): () => void;
  /** The publishing connection, for commands (counters: storage/throttle-counters.ts); it never subscribes. */
  readonly commands: Redis;
  close(): Promise<void>;
}

export async function openRedisChannels(url: string, logger: Logger): Promise<RedisChannels> {
  // Imported here, not at the top: a server without REDIS_URL never loads ioredis (about 20 MiB resident).
  const { Redis } = await import('ioredis');
  const publisher = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  const subscriber = new Redis(url, { lazyConnect: true });
  for (const [role, connection] of [
    ['publisher', publisher],
    ['subscriber', subscriber],
  ] as const) {
    // ioredis retries every 2 s at most while Redis is away and emits an error each time: one warning
    // an outage (with the first error), and one line when it is back (with the count), not one per retry.
    let failures = 0;
    connection.on('error', (error) => {
      if (failures++ === 0) logger.warn({ err: error, role }, 'redis connection error');
    });
    connection.on('ready', () => {
      if (failures > 0) logger.info({ role, failures }, 'redis connection back');
      failures = 0;
    });
  }
  const handlers = new Map<string, Set<(message: string) => void>>();
  subscriber.on('message', (channel: string, message: string) => {
    for (const handler of handlers.get(channel) ?? []) handler(message);
  });

  return {
    commands: publisher,

    async publish(channel, message, { timeoutMs } = {}) {
      const sent = publisher.publish(channel, message).then(
        () => undefined,
        (error: unknown) => logger.warn({ err: error, channel }, 'redis message not sent'),
      );
      if (timeoutMs === undefined) return sent;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([sent, new Promise<void>((done) => (timer = setTimeout(done, timeoutMs)))]);
      clearTimeout(timer);
    },

    subscribe(channel, handler) {
      let channelHandlers = handlers.get(channel);
      if (!channelHandlers) {
        handlers.set(channel, (channelHandlers = new Set()));
        subscriber.subscribe(channel).catch((error: unknown) => logger.warn({ err: error, channel }, 'redis channel not subscribed'));
      }
      channelHandlers.add(handler);
      return () => void channelHandlers.delete(handler);
    },

    async close() {
      handlers.clear();
      subscriber.disconnect();
      await publisher.quit().catch(() => undefined);
    },
  };
}
