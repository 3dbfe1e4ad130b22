import { randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { openStorage, type Storage } from '../../src/storage/database.ts';
import { runMigrations } from '../../src/storage/migrate.ts';
import type { NewEntry } from '../../src/storage/ledger.ts';
import { testDatabase, type TestDatabase } from './server.ts';

/** A migrated database of the suite's dialect, opened for the test file's tests and closed after them. */
export function useTestStorage(): { readonly storage: Storage; readonly database: TestDatabase } {
  const opened = {} as { storage: Storage; database: TestDatabase };
  before(async () => {
    opened.database = await testDatabase();
    await runMigrations(opened.database.databaseUrl);
    opened.storage = await openStorage({ databaseUrl: opened.database.databaseUrl, poolSize: 3 });
  });
  after(async () => {
    await opened.storage.close();
    opened.database.cleanup();
  });
  return opened;
}

/** A ledger entry for an access token of client `app` and subject `alice`, with fixed (past) dates. */
export const ledgerEntry = (overrides: Partial<NewEntry> = {}): NewEntry => ({
  id: randomUUID(),
  lookupHash: randomUUID(),
  type: 'access_token',
  format: 'reference',
  clientId: 'app',
  subject: 'alice',
  grantId: 'g1',
  sessionUid: null,
  scope: 'api:read',
  audience: 'https://api.example',
  payload: 'sealed',
  userCodeHash: null,
  cnfJkt: null,
  cnfX5tS256: null,
  createdAt: new Date('2026-03-04T05:06:07.891Z'),
  expiresAt: new Date('2026-03-04T06:06:07.891Z'),
  ...overrides,
});
