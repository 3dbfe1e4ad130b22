import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { createLedgerStore } from '../src/storage/ledger.ts';
import { withLedgerCache } from '../src/storage/ledger-cache.ts';
import { createRevocationEventStore } from '../src/storage/revocation-events.ts';
import { createRevokedTokenStore } from '../src/storage/revoked-tokens.ts';
import { createCacheStats } from '../src/lib/cache-stats.ts';
import { createRevocation } from '../src/tokens/revocation.ts';
import type { RevocationMessage } from '../src/protocol/revocations.ts';
import { ledgerEntry, useTestStorage } from './helpers/storage.ts';

// A bulk revocation deactivates the matching entries at once; an entry of a token issued just
// before it, but written a moment later (another connection, a queued commit), is caught by a
// second pass, which announces the revocation again.

const opened = useTestStorage();

function setUp() {
  const ledger = withLedgerCache(createLedgerStore(opened.storage.db, opened.storage.sql), { stats: createCacheStats(), max: 0 });
  const published: RevocationMessage[] = [];
  const revocation = createRevocation({
    entries: ledger,
    revokedTokens: createRevokedTokenStore(opened.storage.db, opened.storage.sql),
    revocationEvents: createRevocationEventStore(opened.storage.db, opened.storage.sql),
    config: loadConfig({}),
    publish: async (message) => void published.push(message),
    settleMs: 200,
  });
  return { ledger, revocation, published };
}

const live = (clientId: string, createdAt: Date) => ledgerEntry({ id: randomUUID(), lookupHash: randomUUID(), clientId, createdAt, expiresAt: new Date(Date.now() + 3_600_000) });

test('an entry issued before a bulk revocation but written after its update is deactivated by the second pass, and announced again', async () => {
  const { ledger, revocation, published } = setUp();
  const clientId = `late-${randomUUID()}`;
  const onTime = live(clientId, new Date());
  await ledger.create(onTime);
  const issued = new Date();
  assert.equal(await revocation.revokeScope({ clientId }), 1);
  const late = live(clientId, issued); // issued before the revocation, written after its update
  await ledger.create(late);
  const after = live(clientId, new Date(Date.now() + 5)); // issued after it
  await ledger.create(after);
  assert.equal((await ledger.findByLookupHash(late.lookupHash))?.status, 'valid', 'missed by the first pass');
  assert.equal(published.length, 1);

  await new Promise((done) => setTimeout(done, 600));
  assert.equal((await ledger.findByLookupHash(onTime.lookupHash))?.status, 'inactive');
  assert.equal((await ledger.findByLookupHash(late.lookupHash))?.status, 'inactive', 'caught by the second pass');
  assert.equal((await ledger.findByLookupHash(after.lookupHash))?.status, 'valid', 'a token issued after the revocation is unaffected');
  assert.equal(published.length, 2, 'announced again: caches drop the late entry too');
  assert.deepEqual(published[1], published[0]);
});

test('with nothing written late, the revocation is announced once', async () => {
  const { ledger, revocation, published } = setUp();
  const clientId = `calm-${randomUUID()}`;
  await ledger.create(live(clientId, new Date()));
  assert.equal(await revocation.revokeScope({ clientId }), 1);
  await new Promise((done) => setTimeout(done, 600));
  assert.equal(published.length, 1);
});
