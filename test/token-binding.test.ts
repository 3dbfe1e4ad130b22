import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toLedgerEntry } from '../src/storage/ledger.ts';
import { bindingOf, entryBinding } from '../src/tokens/binding.ts';
import { ledgerEntry } from './helpers/storage.ts';

// A token's binding, whichever kind (DPoP `jkt`, mTLS `x5t#S256`): read from a JWT's `cnf`, written to
// the ledger entry, shown by the admin API.

test('a cnf claim → the binding as oidc-provider holds it; anything else → unbound', () => {
  assert.deepEqual(bindingOf({ jkt: 'k' }), { jkt: 'k' });
  assert.deepEqual(bindingOf({ 'x5t#S256': 'c' }), { 'x5t#S256': 'c' });
  assert.deepEqual(bindingOf({ jkt: 'k', 'x5t#S256': 'c', other: 1 }), { jkt: 'k', 'x5t#S256': 'c' });
  for (const cnf of [undefined, null, 'k', { jkt: 1 }, {}]) assert.deepEqual(bindingOf(cnf), {});
});

test('the binding → the ledger columns → the admin view: cnf with what is bound, absent when unbound', () => {
  assert.deepEqual(entryBinding({}), { cnfJkt: null, cnfX5tS256: null });
  const view = (binding: object) => toLedgerEntry({ ...ledgerEntry(entryBinding(binding)), status: 'valid', redeemedAt: null, revokedAt: null });
  assert.deepEqual(view({ jkt: 'k' }).cnf, { jkt: 'k' });
  assert.deepEqual(view({ 'x5t#S256': 'c' }).cnf, { 'x5t#S256': 'c' });
  assert.deepEqual(view({ jkt: 'k', 'x5t#S256': 'c' }).cnf, { jkt: 'k', 'x5t#S256': 'c' });
  assert.equal('cnf' in view({}), false);
});
