import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../src/config/logger.ts';
import type { FeedEvent } from '../src/protocol/revocations.ts';
import { createRevocationFeedStore } from '../src/storage/revocation-feed.ts';
import { createRevocationFeed } from '../src/tokens/revocation/feed.ts';
import { useTestStorage } from './helpers/storage.ts';

// The feed's poller over a real database of the suite's dialect.
const opened = useTestStorage();

test('a revocation made once following() resolves reaches the subscriber, however late the poller read where to begin', async () => {
  const store = createRevocationFeedStore(opened.storage.db, opened.storage.sql);
  await store.append({ type: 'scope', subject: 'before' });
  // The poller's read of where live events begin is held back: a subscriber must not count on live
  // events until it has landed (a stream that did lost the revocations made in the meantime).
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const slowStore = { ...store, latestId: async () => held.then(() => store.latestId()) };
  const feed = createRevocationFeed({ store: slowStore, issuer: 'https://tally.test', logger: createLogger('silent') });
  const received: FeedEvent[] = [];
  const unsubscribe = feed.subscribe((event) => received.push(event));
  try {
    let following = false;
    const ready = feed.following().then(() => (following = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(following, false, 'not following before the read landed');
    release();
    await ready;
    await feed.publish({ type: 'scope', subject: 'after', revoked_at: new Date().toISOString() });
    const deadline = Date.now() + 5_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(
      received.map((e) => (e.event as { subject?: string }).subject),
      ['after'],
    );
  } finally {
    unsubscribe();
    await feed.close();
  }
});
