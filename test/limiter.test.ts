import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLimiter, Overloaded } from '../src/lib/limiter.ts';

test('a limiter runs at most its limit at once, every task in turn, and a failing task frees its slot', async () => {
  const limited = createLimiter(2);
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const task = (i: number) => async () => {
    running++;
    most = Math.max(most, running);
    await sleep(5);
    running--;
    order.push(i);
    if (i === 1) throw new Error('task 1 fails');
    return i;
  };
  const results = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => limited(task(i))));
  assert.equal(most, 2);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed')),
    [0, 'failed', 2, 3, 4, 5, 6],
  );
  assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4, 5, 6]);
  // Every slot is free again: two tasks start at once.
  running = 0;
  most = 0;
  await Promise.all([limited(task(10)), limited(task(11))]);
  assert.equal(most, 2);
});

test('a bounded limiter refuses at once, with Overloaded, a task beyond its waiting bound, and takes tasks again once there is room', async () => {
  const limited = createLimiter(1, { maxWaiting: 2, name: 'client_auth' });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const results = [1, 2, 3].map((i) => limited(async () => (await gate, i)));
  await assert.rejects(
    limited(async () => 4),
    (error: unknown) => error instanceof Overloaded && error.status === 503 && error.code === 'temporarily_unavailable' && error.work === 'client_auth',
  );
  release();
  assert.deepEqual(await Promise.all(results), [1, 2, 3]);
  assert.equal(await limited(async () => 5), 5);
});
