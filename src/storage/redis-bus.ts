import { Redis } from 'ioredis';
import type { Logger } from '../config/logger.js';

/** A Redis pub/sub channel between replicas: fire-and-forget messages, one subscriber connection. */
export function createRedisBus(url: string, channel: string, logger: Logger) {
  const publisher = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  const subscriber = new Redis(url, { lazyConnect: true });
  for (const connection of [publisher, subscriber]) connection.on('error', (error) => logger.warn({ err: error, channel }, 'redis bus error'));
  const handlers: ((message: string) => void)[] = [];
  subscriber.on('message', (received: string, message: string) => {
    if (received === channel) for (const handler of handlers) handler(message);
  });
  let subscribed: Promise<unknown> | undefined;
  return {
    /**
     * Resolves once Redis has handed the message to the subscribers (so that a write answered after it
     * is already seen by every replica), or after `timeoutMs` when Redis does not answer.
     */
    async publish(message: string, timeoutMs = 1000): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const sent = publisher.publish(channel, message).then(
        () => undefined,
        (error: unknown) => logger.warn({ err: error, channel }, 'redis bus message not sent'),
      );
      await Promise.race([sent, new Promise<void>((done) => (timer = setTimeout(done, timeoutMs)))]);
      clearTimeout(timer);
    },
    subscribe(handler: (message: string) => void): void {
      handlers.push(handler);
      subscribed ??= subscriber.subscribe(channel).catch((error: unknown) => logger.warn({ err: error, channel }, 'redis bus not subscribed'));
    },
    async close() {
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}

export type RedisBus = ReturnType<typeof createRedisBus>;
