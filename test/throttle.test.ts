import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisThrottleCounterStore, createThrottleCounterStore, type ThrottleCounterStore } from '../src/storage/throttle-counters.ts';
import { createThrottle, THROTTLE_POLICIES, type ThrottlePolicy } from '../src/tokens/throttle.ts';
import { prune } from '../src/tokens/prune.ts';
import { query } from './helpers/db.ts';
import { startRedis } from './helpers/redis.ts';
import { useTestStorage } from './helpers/storage.ts';

// The throttle's rule (tokens/throttle.ts) over both stores, with a clock the test moves.

const opened = useTestStorage();
const { account, address } = THROTTLE_POLICIES;

function clock(start = Date.parse('2026-05-01T10:00:00Z')) {
  let now = start;
  return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

async function ruleTests(store: () => ThrottleCounterStore) {
  test('an account: allowed for 4 failures, refused after the 5th for 1 s, then 2 s, 4 s after each further failure; a success clears it', async () => {
    const time = clock();
    const throttle = createThrottle(store(), time.now);
    for (let i = 1; i <= 4; i++) assert.deepEqual(await throttle.fail(account, 'alice'), { allowed: true, retryAfterSeconds: 0, failures: i });
    assert.deepEqual(await throttle.fail(account, 'alice'), { allowed: false, retryAfterSeconds: 1, failures: 5 });
    assert.equal((await throttle.check(account, 'alice')).allowed, false);
    assert.equal((await throttle.check(account, 'bob')).allowed, true, 'another account is not affected');
    time.advance(1);
    assert.equal((await throttle.check(account, 'alice')).allowed, true, 'after 1 s');
    assert.equal((await throttle.fail(account, 'alice')).retryAfterSeconds, 2);
    time.advance(1);
    assert.deepEqual(await throttle.check(account, 'alice'), { allowed: false, retryAfterSeconds: 1, failures: 6 });
    time.advance(1);
    assert.equal((await throttle.fail(account, 'alice')).retryAfterSeconds, 4);
    await throttle.clear(account, 'alice');
    assert.deepEqual(await throttle.check(account, 'alice'), { allowed: true, retryAfterSeconds: 0, failures: 0 });
  });

  test('the doubling stops at 15 minutes', async () => {
    const time = clock();
    const throttle = createThrottle(store(), time.now);
    let last = 0;
    for (let i = 0; i < 40; i++) {
      last = (await throttle.fail(account, 'carol')).retryAfterSeconds;
      time.advance(last);
    }
    assert.equal(last, 15 * 60);
  });

  test('an address: 20 failures within 15 minutes allowed, the 21st refuses for the rest of the window; then it starts over', async () => {
    const time = clock();
    const throttle = createThrottle(store(), time.now);
    for (let i = 1; i <= 20; i++) {
      assert.equal((await throttle.fail(address, '203.0.113.7')).allowed, true, `failure ${i}`);
      time.advance(10);
    }
    const refused = await throttle.fail(address, '203.0.113.7');
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfterSeconds, 15 * 60 - 200, 'until 15 minutes after the first failure');
    time.advance(15 * 60 - 200);
    assert.equal((await throttle.check(address, '203.0.113.7')).allowed, true);
    assert.equal((await throttle.fail(address, '203.0.113.7')).failures, 1, 'an expired count starts over');
  });

  test('concurrent failures are each counted', async () => {
    const throttle = createThrottle(store());
    const policy: ThrottlePolicy = { name: 'test', threshold: 100, windowSeconds: 60, sliding: false };
    await Promise.all(Array.from({ length: 30 }, () => throttle.fail(policy, 'same')));
    assert.equal((await throttle.check(policy, 'same')).failures, 30);
  });
}

describe('in the database', () => {
  const store = () => createThrottleCounterStore(opened.storage.db, opened.storage.sql);
  ruleTests(store);

  test('only hashes of what is counted are stored', async () => {
    await createThrottle(store()).fail(account, 'dave@example.com');
    const keys = (await query<{ key: string }>(opened.database, `SELECT "key" FROM "throttle_counters"`)).map((r) => r.key);
    assert.ok(keys.length > 0);
    for (const key of keys) assert.match(key, /^[a-z_]+:[\w-]{43}$/);
    assert.ok(!keys.some((k) => k.includes('dave')));
  });

  test('prune deletes expired counts and keeps live ones', async () => {
    const time = clock(Date.now() - 2 * 24 * 3600 * 1000);
    await createThrottle(store(), time.now).fail(account, 'expired-one');
    await createThrottle(store()).fail(account, 'live-one');
    const before = (await query<{ n: number }>(opened.database, `SELECT COUNT(*) AS "n" FROM "throttle_counters"`))[0]!.n;
    const stores = { throttleCounters: store() } as unknown as Parameters<typeof prune>[0]['stores'];
    const empty = { pruneBatch: async () => 0, prune: async () => 0, pruneBefore: async () => 0 };
    const result = await prune({
      config: { accessTokenTtl: 60, refreshTokenTtl: 60, auditRetentionDays: 90 } as never,
      stores: { ...stores, entries: empty, revokedTokens: empty, revocationEvents: empty, providerRecords: empty, revocationFeed: empty } as never,
      audit: empty as never,
      replayMarks: empty,
    });
    assert.ok(result.throttle_counters >= 1);
    const after = (await query<{ n: number }>(opened.database, `SELECT COUNT(*) AS "n" FROM "throttle_counters"`))[0]!.n;
    assert.equal(Number(after), Number(before) - result.throttle_counters);
    assert.equal((await createThrottle(store()).check(account, 'live-one')).failures, 1);
  });
});

describe('in Redis', async () => {
  const redis = await startRedis();
  if (!redis) {
    test('Redis store', (t) => t.skip('redis-server not installed'));
    return;
  }
  const connection = new Redis(redis.url);
  let n = 0;
  // A fresh prefix per test: the clock of each starts anew.
  ruleTests(() => createRedisThrottleCounterStore(connection, `test:${++n}:`));
  test('stop Redis', async () => {
    connection.disconnect();
    await redis.stop();
  });
});
