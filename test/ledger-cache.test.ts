import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { createLedgerStore, type NewEntry } from '../src/storage/ledger.ts';
import { withLedgerCache } from '../src/storage/ledger-cache.ts';
import { createCacheStats } from '../src/lib/cache-stats.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { discover } from './helpers/oauth.ts';
import { startServer } from './helpers/server.ts';
import { ledgerEntry, useTestStorage } from './helpers/storage.ts';

const opened = useTestStorage();
/** A live access token's entry (the helper's dates are in the past). */
const entry = (overrides: Partial<NewEntry> = {}): NewEntry =>
  ledgerEntry({ grantId: randomUUID(), createdAt: new Date(), expiresAt: new Date(Date.now() + 3600_000), ...overrides });

function cachedLedger() {
  const stats = createCacheStats();
  return { stats, ledger: withLedgerCache(createLedgerStore(opened.storage.db, opened.storage.sql), { stats }) };
}

/** Changes a row behind the cache's back, as another process would. */
const changeBehind = (lookupHash: string, status: string) => opened.storage.db.tokenEntry.update({ where: { lookupHash }, data: { status } });

test("a live access token's row is read once, then served from memory until it is forgotten", async () => {
  const { ledger, stats } = cachedLedger();
  const written = entry();
  await ledger.create(written);
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'valid');
  await changeBehind(written.lookupHash, 'revoked');
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'valid', 'the cached row');
  assert.deepEqual({ ...stats }, { hits: 1, misses: 1 });
  ledger.forget(written.lookupHash);
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'revoked', 'read again once forgotten');

  const other = entry();
  await ledger.create(other);
  await ledger.findByLookupHash(other.lookupHash);
  await changeBehind(other.lookupHash, 'inactive');
  ledger.forgetAll();
  assert.equal((await ledger.findByLookupHash(other.lookupHash))?.status, 'inactive');
});

test("this process's revocations are seen at once: by hash, by id, by scope", async () => {
  const { ledger } = cachedLedger();
  const [a, b, c] = [entry(), entry(), entry({ subject: `bob-${randomUUID()}` })];
  for (const e of [a, b, c]) {
    await ledger.create(e);
    assert.equal((await ledger.findByLookupHash(e.lookupHash))?.status, 'valid');
  }
  assert.equal(await ledger.revokeByLookupHash(a.lookupHash), 'reference');
  assert.equal((await ledger.findByLookupHash(a.lookupHash))?.status, 'revoked');
  assert.equal((await ledger.revokeById(b.id))?.revoked, true);
  assert.equal((await ledger.findByLookupHash(b.lookupHash))?.status, 'revoked');
  assert.deepEqual(await ledger.deactivate({ subject: c.subject! }, new Date()), { reference: 1, jwt: 0 });
  assert.equal((await ledger.findByLookupHash(c.lookupHash))?.status, 'inactive');
});

test('refresh tokens, codes and rows no longer live are never kept', async () => {
  const { ledger } = cachedLedger();
  for (const type of ['refresh_token', 'authorization_code', 'device_code'] as const) {
    const written = entry({ type });
    await ledger.create(written);
    await ledger.findByLookupHash(written.lookupHash);
    await changeBehind(written.lookupHash, 'redeemed');
    assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'redeemed', type);
  }
  const revoked = entry();
  await ledger.create(revoked);
  await changeBehind(revoked.lookupHash, 'revoked');
  await ledger.findByLookupHash(revoked.lookupHash);
  await changeBehind(revoked.lookupHash, 'valid');
  assert.equal((await ledger.findByLookupHash(revoked.lookupHash))?.status, 'valid', 'a revoked row was not kept');
});

test('a read that overlaps a revocation is answered but not kept', async () => {
  // The read fetches the row, then (held here) completes only after the revocation has: as a
  // PostgreSQL read can, its answer arriving after a write that another connection made.
  const store = createLedgerStore(opened.storage.db, opened.storage.sql);
  let release!: () => void;
  const held = new Promise<void>((done) => (release = done));
  const slowReads = { ...store, findByLookupHash: async (hash: string) => store.findByLookupHash(hash).then(async (row) => (await held, row)) };
  const ledger = withLedgerCache(slowReads, { stats: createCacheStats() });
  const written = entry();
  await ledger.create(written);
  const reading = ledger.findByLookupHash(written.lookupHash);
  await sleep(50);
  assert.equal(await ledger.revokeByLookupHash(written.lookupHash), 'reference');
  release();
  assert.equal((await reading)?.status, 'valid', 'the overlapping read saw the row before the revocation');
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'revoked', 'and was not kept');
});

test('a row is kept no longer than its token lives', async () => {
  const { ledger } = cachedLedger();
  const written = entry({ expiresAt: new Date(Date.now() + 300) });
  await ledger.create(written);
  await ledger.findByLookupHash(written.lookupHash);
  await changeBehind(written.lookupHash, 'revoked');
  await sleep(400);
  assert.equal((await ledger.findByLookupHash(written.lookupHash))?.status, 'revoked');
});

// Two servers on one SQLite file or one PostgreSQL database, without Redis: the revocation feed tells A.
test('a token revoked through another server on the same database is inactive here within a second', async () => {
  const a = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  const b = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, DATABASE_URL: a.databaseUrl } });
  try {
    const registered = await admin(a, 'POST', '/clients', {
      client_name: 'svc',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: ['http://127.0.0.1:9/cb'],
      scope: 'api:read',
      token_mode: 'reference',
    });
    assert.equal(registered.status, 201);
    const onA = await discover(a, registered.body);
    const { access_token } = await oidc.clientCredentialsGrant(onA, { scope: 'api:read' });
    for (let i = 0; i < 3; i++) assert.equal((await oidc.tokenIntrospection(onA, access_token)).active, true);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    const hits = Number(/^tally_cache_lookups_total\{cache="ledger",result="hit"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(hits >= 2, `introspections after the first read the cached row (${hits} hits)`);

    await oidc.tokenRevocation(await discover(b, registered.body), access_token);
    const started = Date.now();
    while ((await oidc.tokenIntrospection(onA, access_token)).active) {
      assert.ok(Date.now() - started < 1000, 'still active on A a second after its revocation on B');
      await sleep(20);
    }
  } finally {
    await b.stop();
    await a.stop();
  }
});
