import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCacheStats } from '../src/lib/cache-stats.ts';
import { createReadCache } from '../src/lib/read-cache.ts';

// The read-through cache behind the client store and the ledger cache (src/lib/read-cache.ts).

/** A read that resolves when told to, counting how often it ran. */
function controlledRead(value: string) {
  const state = { runs: 0, release: (): void => undefined };
  const read = () => {
    state.runs++;
    return new Promise<string>((resolve) => (state.release = () => resolve(value)));
  };
  return { state, read };
}

const forAMinute = () => Date.now() + 60_000;

test('a kept value is served until its time, counted as hits; a value not to keep is read each time', async () => {
  const stats = createCacheStats();
  const cache = createReadCache<string>({ max: 10, stats });
  let reads = 0;
  const read = async () => `v${++reads}`;
  assert.equal(await cache.get('a', read, forAMinute), 'v1');
  assert.equal(await cache.get('a', read, forAMinute), 'v1');
  assert.deepEqual(stats, { hits: 1, misses: 1 });
  assert.equal(await cache.get('b', read, () => undefined), 'v2');
  assert.equal(await cache.get('b', read, () => undefined), 'v3', 'not kept');
  assert.equal(await cache.get('c', read, () => Date.now() - 1), 'v4');
  assert.equal(await cache.get('c', read, () => Date.now() + 30), 'v5', 'already past: not kept');
  assert.equal(await cache.get('c', read, forAMinute), 'v5');
  await new Promise((done) => setTimeout(done, 40));
  assert.equal(await cache.get('c', read, forAMinute), 'v6', 'read again once its time passed');
});

test('a read overlapped by a forget of its key, or by forgetAll, is answered but not kept', async () => {
  const cache = createReadCache<string>({ max: 10, stats: createCacheStats() });
  for (const drop of [() => cache.forget('k'), () => cache.forgetAll()]) {
    const old = controlledRead('before the write');
    const answer = cache.get('k', old.read, forAMinute);
    drop(); // a write completed while the read ran
    old.state.release();
    assert.equal(await answer, 'before the write');
    let fresh = 0;
    assert.equal(await cache.get('k', async () => `after ${++fresh}`, forAMinute), 'after 1', 'read again, not served from the overlapped read');
    cache.forgetAll();
  }
  // A forget of another key does not matter.
  const other = controlledRead('kept');
  const answer = cache.get('k', other.read, forAMinute);
  cache.forget('x');
  other.state.release();
  assert.equal(await answer, 'kept');
  assert.equal(await cache.get('k', async () => 'unused', forAMinute), 'kept');
});

test('a failed read keeps nothing and leaves later reads kept as usual; past max the oldest is dropped', async () => {
  const cache = createReadCache<string>({ max: 2, stats: createCacheStats() });
  await assert.rejects(
    cache.get('k', async () => Promise.reject(new Error('database down')), forAMinute),
    /database down/,
  );
  assert.equal(await cache.get('k', async () => 'v', forAMinute), 'v');
  assert.equal(await cache.get('k', async () => 'unused', forAMinute), 'v');
  await cache.get('l', async () => 'w', forAMinute);
  await cache.get('m', async () => 'x', forAMinute);
  assert.equal(await cache.get('k', async () => 'read again', forAMinute), 'read again', 'the oldest was dropped');
  assert.equal(await cache.get('m', async () => 'unused', forAMinute), 'x');
});
