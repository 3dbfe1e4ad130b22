import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { z } from 'zod';
import { sha256, timeOrderedUuid } from '../src/lib/crypto.ts';

// The ledger's keys: entry ids ordered by time (cheaper inserts, bench/ANALYSIS.md) and the
// lookup hash every token is stored and found by, which must not change between versions.

test('entry ids are UUIDs of version 7: the time first, so that later ones sort after earlier ones; never the same twice', () => {
  const at = Date.UTC(2026, 11, 6, 5, 0, 0, 123);
  const id = timeOrderedUuid(at);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(z.uuid().safeParse(id).success, true);
  assert.equal(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16), at);
  const ids = Array.from({ length: 50 }, (_, i) => timeOrderedUuid(at + i));
  assert.deepEqual([...ids].sort(), ids);
  const many = new Set(Array.from({ length: 10_000 }, () => timeOrderedUuid(at)));
  assert.equal(many.size, 10_000);
});

test('the lookup hash is SHA-256, base64url, of the value (as stored before)', () => {
  for (const value of ['', 'a token value', 'ü', Buffer.from([0, 1, 2])]) {
    assert.equal(sha256(value), createHash('sha256').update(value).digest('base64url'));
  }
});
