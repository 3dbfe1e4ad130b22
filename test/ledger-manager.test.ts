import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { AdapterPayload } from 'oidc-provider';
import { loadConfig } from '../src/config/index.ts';
import { createCacheStats } from '../src/lib/cache-stats.ts';
import { randomToken, sha256 } from '../src/lib/crypto.ts';
import { createLedgerStore, type NewEntry } from '../src/storage/ledger.ts';
import { withLedgerCache } from '../src/storage/ledger-cache.ts';
import { createProviderRecordStore } from '../src/storage/provider-records.ts';
import { createRevocationEventStore, eventKey } from '../src/storage/revocation-events.ts';
import { createRevocationPassStore } from '../src/storage/revocation-passes.ts';
import { createRevokedTokenStore } from '../src/storage/revoked-tokens.ts';
import { createLedgerManager } from '../src/tokens/ledger-manager.ts';
import { createRevocation } from '../src/tokens/revocation/index.ts';
import { createSealedRecords } from '../src/tokens/sealed-records.ts';
import { newStatelessJti } from '../src/tokens/token-ids.ts';
import { ledgerEntry, useTestStorage } from './helpers/storage.ts';

// The one definition of an active token, over a real database of the suite's dialect.
const opened = useTestStorage();

function setUp(env: NodeJS.ProcessEnv = {}) {
  const { db, sql } = opened.storage;
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  const stores = {
    entries: withLedgerCache(createLedgerStore(db, sql), { stats: createCacheStats(), max: 0 }),
    revokedTokens: createRevokedTokenStore(db, sql),
    revocationEvents: createRevocationEventStore(db, sql),
  };
  const payloadKey = { id: 'k1', key: randomBytes(32) };
  const records = createSealedRecords(createProviderRecordStore(db, sql), { payloadKey, payloadKeys: new Map([[payloadKey.id, payloadKey.key]]) });
  const revocation = createRevocation({ ...stores, revocationPasses: createRevocationPassStore(db, sql), config, publish: async () => undefined });
  return { ...stores, records, ledger: createLedgerManager({ ...stores, config, records, revocation }) };
}

const hour = 3600_000;
/** A live entry whose lookup hash is that of a fresh token id (returned with it). */
function live(overrides: Partial<NewEntry> = {}): { id: string; entry: NewEntry } {
  const id = randomToken();
  return { id, entry: ledgerEntry({ lookupHash: sha256(id), createdAt: new Date(), expiresAt: new Date(Date.now() + hour), ...overrides }) };
}
const seconds = (ms = Date.now()) => Math.floor(ms / 1000);

test('an entry is active while valid, of the type and format asked for, and unexpired', async () => {
  const { ledger, entries } = setUp();
  const { id, entry } = live();
  await entries.create(entry);
  assert.equal((await ledger.findActive({ id, type: 'access_token' }))?.entry?.id, entry.id);
  assert.equal((await ledger.findActive({ id, type: 'access_token', format: 'reference' }))?.entry?.id, entry.id);
  assert.equal(await ledger.findActive({ id, type: 'access_token', format: 'jwt' }), undefined, 'another format');
  assert.equal(await ledger.findActive({ id, type: 'refresh_token' }), undefined, 'another type');
  assert.equal(await ledger.findActive({ id: randomToken(), type: 'access_token' }), undefined, 'no entry');

  const expired = live({ expiresAt: new Date(Date.now() - 1) });
  await entries.create(expired.entry);
  assert.equal(await ledger.findActive({ id: expired.id, type: 'access_token' }), undefined, 'expired');
});

test('a revoked entry, or one a bulk revocation made inactive, is not active', async () => {
  const { ledger, entries } = setUp();
  const one = live();
  const subject = `bulk-${randomUUID()}`;
  const bulk = live({ subject });
  await entries.create(one.entry);
  await entries.create(bulk.entry);
  await ledger.revokeToken(one.id, 'access_token');
  assert.equal(await ledger.findActive({ id: one.id, type: 'access_token' }), undefined);
  assert.equal(await ledger.revokeScope({ subject }), 1);
  assert.equal(await ledger.findActive({ id: bulk.id, type: 'access_token' }), undefined);
});

test('a used refresh token: inactive, found with its use time when asked; within the reuse leeway still active', async () => {
  for (const leeway of ['0', '30']) {
    const { ledger, entries } = setUp({ REFRESH_TOKEN_REUSE_LEEWAY: leeway });
    const { id, entry } = live({ type: 'refresh_token' });
    await entries.create(entry);
    assert.equal(await ledger.redeem(id, 'refresh_token'), true, 'the first use');
    if (leeway === '0') {
      assert.equal(await ledger.redeem(id, 'refresh_token'), false, 'a second use');
      assert.equal(await ledger.findActive({ id, type: 'refresh_token' }), undefined);
      const used = await ledger.findActive({ id, type: 'refresh_token', includeUsed: true });
      assert.ok(used?.usedAt instanceof Date && Math.abs(used.usedAt.getTime() - Date.now()) < 60_000);
    } else {
      assert.equal(await ledger.redeem(id, 'refresh_token'), true, 'a second use within the leeway');
      const found = await ledger.findActive({ id, type: 'refresh_token', includeUsed: true });
      assert.ok(found?.entry && found.usedAt === undefined, 'active, not used');
    }
  }
});

test('codes have no reuse leeway', async () => {
  const { ledger, entries } = setUp({ REFRESH_TOKEN_REUSE_LEEWAY: '30' });
  const { id, entry } = live({ type: 'authorization_code' });
  await entries.create(entry);
  assert.equal(await ledger.redeem(id, 'authorization_code'), true);
  assert.equal(await ledger.redeem(id, 'authorization_code'), false);
  assert.ok((await ledger.findActive({ id, type: 'authorization_code', includeUsed: true }))?.usedAt);
});

test('a device code is found by its user code, by the same rule', async () => {
  const { ledger, entries } = setUp();
  const userCode = `UC-${randomUUID()}`;
  const { entry } = live({ type: 'device_code', userCodeHash: sha256(userCode) });
  await entries.create(entry);
  assert.equal((await ledger.findActive({ userCode, type: 'device_code' }))?.entry?.id, entry.id);
  assert.equal(await ledger.findActive({ userCode, type: 'authorization_code' }), undefined);
});

test('a stateless token: active unless listed as revoked or matched by a revocation event issued at or after it, to the second', async () => {
  const { ledger, revocationEvents } = setUp();
  const subject = `stl-${randomUUID()}`;
  const claims = { iat: seconds(), subject, clientId: 'app', grantId: `g-${randomUUID()}` };
  const jti = newStatelessJti();
  assert.ok(await ledger.findActive({ id: jti, type: 'access_token', claims }));
  assert.equal(await ledger.findActive({ id: jti, type: 'access_token' }), undefined, 'no claims to match events by: not judged active');

  // An event older than the token (a second before its iat) does not match it; one of its second does.
  const { kind, value } = eventKey({ subject });
  await revocationEvents.record(kind, value, new Date((claims.iat - 1) * 1000), new Date(Date.now() + hour));
  assert.ok(await ledger.findActive({ id: jti, type: 'access_token', claims }), 'revoked before it was issued');
  await revocationEvents.record(kind, value, new Date(claims.iat * 1000 + 999), new Date(Date.now() + hour));
  assert.equal(await ledger.findActive({ id: jti, type: 'access_token', claims }), undefined, 'issued within the second of the event');

  const other = newStatelessJti();
  const otherClaims = { ...claims, subject: `stl-${randomUUID()}` };
  await ledger.revokeToken(other, 'access_token');
  assert.equal(await ledger.findActive({ id: other, type: 'access_token', claims: otherClaims }), undefined, 'listed');
});

test('a stateless refresh token used once: inactive, or found with its use time; a second use is refused', async () => {
  const { ledger } = setUp();
  const jti = newStatelessJti();
  const claims = { iat: seconds(), subject: `s-${randomUUID()}`, clientId: 'app', grantId: `g-${randomUUID()}` };
  assert.equal(await ledger.redeem(jti, 'refresh_token'), true);
  assert.equal(await ledger.redeem(jti, 'refresh_token'), false);
  assert.equal(await ledger.findActive({ id: jti, type: 'refresh_token', claims }), undefined);
  assert.ok((await ledger.findActive({ id: jti, type: 'refresh_token', claims, includeUsed: true }))?.usedAt instanceof Date);
});

test('a found token: active while unused, unexpired, and its grant in place for its client and account', async () => {
  const { ledger, records } = setUp();
  const exp = seconds() + 3600;
  const grant = async (payload: Partial<AdapterPayload>, ttl = 3600) => {
    const id = randomUUID();
    const stored = { kind: 'Grant', jti: id, iat: seconds(), exp: seconds() + ttl, clientId: 'app', accountId: 'alice', ...payload };
    await records.save('Grant', id, stored as AdapterPayload, ttl);
    return id;
  };
  const token = { clientId: 'app', accountId: 'alice', exp };
  assert.ok(await ledger.findActive({ found: token }), 'no grant to check');
  assert.ok(await ledger.findActive({ found: { ...token, grantId: await grant({}) } }));
  assert.equal(await ledger.findActive({ found: { ...token, grantId: randomUUID() } }), undefined, 'grant gone');
  assert.equal(await ledger.findActive({ found: { ...token, grantId: await grant({ clientId: 'other' }) } }), undefined, "another client's grant");
  assert.equal(await ledger.findActive({ found: { ...token, grantId: await grant({ accountId: 'mallory' }) } }), undefined, "another account's grant");
  assert.equal(await ledger.findActive({ found: { ...token, grantId: await grant({ exp: seconds() - 1 }) } }), undefined, 'grant expired');
  assert.equal(await ledger.findActive({ found: { ...token, exp: seconds() } }), undefined, 'token expired');
  assert.equal(await ledger.findActive({ found: { ...token, consumed: seconds() } }), undefined, 'token used');
});
