import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AdapterPayload } from 'oidc-provider';
import { loadConfig } from '../src/config/index.ts';
import { randomToken } from '../src/lib/crypto.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { createAdapterFactory } from '../src/tokens/adapter.ts';
import { testDatabase, type TestDatabase } from './helpers/server.ts';

// The adapters over a real database: what oidc-provider's introspection asks of them, and how often
// that reaches the ledger.
let database: TestDatabase;
let runtime: Runtime;
let ledgerReads = 0;
before(async () => {
  database = await testDatabase();
  runtime = await openRuntime(loadConfig({ DATABASE_URL: database.databaseUrl, LOG_LEVEL: 'silent' }));
  const entries = runtime.stores.entries;
  const read = entries.findByLookupHash.bind(entries);
  entries.findByLookupHash = (lookupHash: string) => {
    ledgerReads++;
    return read(lookupHash);
  };
});
after(async () => {
  await runtime.close();
  database.cleanup();
});

const nextTurn = () => new Promise((done) => setImmediate(done));

function adapters() {
  const factory = createAdapterFactory({ ...runtime, payloadKey: runtime.keyring.payloadKey, payloadKeys: runtime.keyring.payloadKeys });
  return { access: factory('AccessToken'), credentials: factory('ClientCredentials'), refresh: factory('RefreshToken') };
}

test('a token looked up as every model at once is read from the ledger once; a later lookup reads again and sees a revocation', async () => {
  const { access, credentials, refresh } = adapters();
  const value = randomToken();
  const now = Math.floor(Date.now() / 1000);
  await credentials.upsert(
    value,
    { kind: 'ClientCredentials', jti: value, clientId: 'app', iat: now, exp: now + 600, scope: 'api:read' } as AdapterPayload,
    600,
  );

  ledgerReads = 0;
  const found = await Promise.all([access.find(value), credentials.find(value), refresh.find(value)]);
  assert.equal(ledgerReads, 1, 'one read for the three models');
  assert.deepEqual(
    found.map((p) => p?.kind),
    [undefined, 'ClientCredentials', undefined],
    'only the model the token belongs to gets it',
  );

  await runtime.ledger.revokeToken(value, 'access_token');
  await nextTurn();
  ledgerReads = 0;
  assert.equal(await credentials.find(value), undefined, 'revoked: the next turn reads the ledger again');
  assert.equal(ledgerReads, 1);
});

test('lookups of different tokens in one turn are not mixed up', async () => {
  const { credentials } = adapters();
  const now = Math.floor(Date.now() / 1000);
  const values = Array.from({ length: 5 }, () => randomToken());
  for (const [i, value] of values.entries()) {
    await credentials.upsert(value, { kind: 'ClientCredentials', jti: value, clientId: `app-${i}`, iat: now, exp: now + 600 } as AdapterPayload, 600);
  }
  await nextTurn();
  const found = await Promise.all(values.map((v) => credentials.find(v)));
  assert.deepEqual(
    found.map((p) => p?.clientId),
    values.map((_, i) => `app-${i}`),
  );
});
