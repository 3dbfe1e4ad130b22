import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLimiter } from '../src/lib/limiter.ts';

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
