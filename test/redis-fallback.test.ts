import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { REDIS_RETRY_MS } from '../src/storage/redis-fallback.ts';
import { createRedisReplayMarkStore, createReplayMarkStore } from '../src/storage/replay-marks.ts';
import { createRedisThrottleCounterStore, createThrottleCounterStore, withFallbackStore } from '../src/storage/throttle-counters.ts';
import { redisSkipReason, startRedis } from './helpers/redis.ts';
import { useTestStorage } from './helpers/storage.ts';

// What Tally keeps in Redis (throttle counts, one-time marks) goes to the database while Redis does
// not answer (storage/redis-fallback.ts). What was written there meanwhile must still count once Redis
// answers again: a DPoP proof used during the outage stays used (on every replica: the marks are
// copied into Redis), and failures counted then still count toward a lockout. A real Redis, stopped and
// started again (empty), and the real database.

const opened = useTestStorage();

test('after a Redis outage: a mark made in the database meanwhile still refuses its key, here and on another replica, and failures counted there still count', {
  skip: redisSkipReason(),
}, async () => {
  const redis = (await startRedis())!;
  // As the server connects (storage/redis.ts).
  const connection = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  connection.on('error', () => undefined);
  const told: unknown[] = [];
  const copies: number[] = [];
  const copyFailures: unknown[] = [];
  const events = {
    fallback: (error: unknown) => told.push(error),
    copied: (n: number) => copies.push(n),
    copyFailed: (error: unknown) => copyFailures.push(error),
  };
  const marks = createRedisReplayMarkStore(connection, 'test:replay:', createReplayMarkStore(opened.storage.sql), events);
  const counts = withFallbackStore(
    createRedisThrottleCounterStore(connection, 'test:throttle:'),
    createThrottleCounterStore(opened.storage.db, opened.storage.sql),
    (error) => told.push(error),
  );
  const inAMinute = () => new Date(Date.now() + 60_000);
  const fail = (key: string) => counts.increment(key, new Date(), 600_000, false);
  try {
    assert.equal(await marks.mark('before', inAMinute()), true);
    assert.equal((await fail('alice')).failures, 1);
    assert.equal(await connection.exists('test:replay:before'), 1, 'marked in Redis while it answers');

    await redis.stop();
    assert.equal(await marks.mark('during', inAMinute()), true, 'marked in the database');
    assert.equal(await marks.mark('during', inAMinute()), false, 'refused again during the outage');
    assert.equal((await fail('alice')).failures, 1, 'counted in the database (what Redis holds cannot be read)');
    assert.equal((await fail('alice')).failures, 2);
    assert.equal(told.length, 2, 'each store told once per outage, not once per call');
    // Redis tried again after 5 s, and still away: not told again.
    await sleep(REDIS_RETRY_MS + 200);
    assert.equal(await marks.mark('during, later', inAMinute()), true);
    assert.equal(await counts.get('bob', new Date()), undefined);
    assert.equal(told.length, 2, 'not told again at a failed retry');

    await redis.restart();
    await sleep(REDIS_RETRY_MS + 200);
    assert.equal(await marks.mark('during', inAMinute()), false, 'used during the outage: still used');
    // Redis answered again: the marks made in the database meanwhile are copied into it, for the
    // replicas that never saw the outage. One started now, with no outage of its own, refuses the proof.
    for (const deadline = Date.now() + 5_000; copies.length === 0 && copyFailures.length === 0 && Date.now() < deadline; ) await sleep(20);
    assert.deepEqual(copyFailures, []);
    assert.ok(copies[0]! >= 1, `copied ${copies[0]}`);
    assert.equal(await connection.exists('test:replay:during'), 1, 'the mark made during the outage is in Redis');
    const otherReplica = createRedisReplayMarkStore(connection, 'test:replay:', createReplayMarkStore(opened.storage.sql), events);
    assert.equal(await otherReplica.mark('during', inAMinute()), false, 'another replica refuses it too');
    assert.equal(await marks.mark('after', inAMinute()), true);
    assert.equal(await marks.mark('after', inAMinute()), false);
    assert.equal(await connection.exists('test:replay:after'), 1, 'Redis is used again');
    // Redis came back empty: its count starts over at 1, beside the 2 counted in the database.
    assert.equal((await fail('alice')).failures, 3);
    assert.equal((await counts.get('alice', new Date()))?.failures, 3);
    assert.equal(await connection.exists('test:throttle:alice'), 1, 'counted in Redis again');
    await counts.clear('alice');
    assert.equal(await counts.get('alice', new Date()), undefined, 'cleared in both');
    assert.equal(told.length, 2);
  } finally {
    connection.disconnect();
    await redis.stop();
  }
});
