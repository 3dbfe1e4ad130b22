import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTurnBatch } from '../src/storage/turn-batch.ts';

test('the asks of one turn are answered by one call, in order, at most max at a time; the next turn is a new batch', async () => {
  const calls: number[][] = [];
  const double = createTurnBatch<number, number>(async (asks) => {
    calls.push(asks.map((a) => a.ask));
    for (const a of asks) a.resolve(a.ask * 2);
  }, 3);
  const answers = await Promise.all([1, 2, 3, 4, 5].map(double));
  assert.deepEqual(answers, [2, 4, 6, 8, 10]);
  assert.deepEqual(calls, [
    [1, 2, 3],
    [4, 5],
  ]);
  assert.equal(await double(6), 12);
  assert.deepEqual(calls.at(-1), [6]);
});

test('a batch that throws fails the asks it left unsettled with its error; an ask left unanswered fails too', async () => {
  const failing = createTurnBatch<string, string>(async (asks) => {
    asks[0]!.resolve('kept');
    throw new Error('database gone');
  }, 10);
  const settled = await Promise.allSettled(['a', 'b', 'c'].map(failing));
  assert.deepEqual(settled[0], { status: 'fulfilled', value: 'kept' });
  for (const s of settled.slice(1)) assert.equal(s.status === 'rejected' && (s.reason as Error).message, 'database gone');

  const forgetful = createTurnBatch<string, string>(async (asks) => asks[1]?.resolve('only b'), 10);
  const outcome = await Promise.allSettled(['a', 'b'].map(forgetful));
  assert.equal(outcome[0]!.status, 'rejected');
  assert.deepEqual(outcome[1], { status: 'fulfilled', value: 'only b' });
});
