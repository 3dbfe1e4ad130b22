import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { CONSOLE_CLIENT_ID, consoleClientMetadata, ensureConsoleClient } from '../src/admin/console-client.ts';
import { TallyError } from '../src/lib/errors.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { testDatabase, type TestDatabase } from './helpers/server.ts';

// The admin console's client, kept by every server start (admin/console-client.ts): two replicas
// starting at once on one database, a client changed since, and an issuer that cannot have it.

const ISSUER = 'http://localhost:3999';
let database: TestDatabase;
let replicas: Runtime[];

before(async () => {
  database = await testDatabase();
  const config = () => loadConfig({ DATABASE_URL: database.databaseUrl, LOG_LEVEL: 'silent', ISSUER });
  replicas = [await openRuntime(config()), await openRuntime(config())];
});
after(async () => {
  for (const runtime of replicas) await runtime.close();
  database.cleanup();
});

test('two replicas starting at once → one creates the console client, the other finds it; nothing throws', async () => {
  const results = await Promise.all(replicas.map((runtime) => ensureConsoleClient(runtime)));
  assert.deepEqual([...results].sort(), ['created', 'unchanged']);
  const stored = await replicas[0]!.clients.find(CONSOLE_CLIENT_ID);
  const { client_id: _id, ...wanted } = consoleClientMetadata(ISSUER);
  for (const [key, value] of Object.entries(wanted)) assert.deepEqual(stored!.metadata[key], value, key);
  assert.equal(stored!.secretHash, null, 'a public client: no secret');
  assert.equal((await replicas[0]!.clients.list(10)).filter((c) => c.metadata.client_id === CONSOLE_CLIENT_ID).length, 1);
});

test('a console client changed since (scope, redirect) → put back at the next start; then left alone', async () => {
  const [runtime] = replicas;
  const current = await runtime!.clients.find(CONSOLE_CLIENT_ID);
  await runtime!.clients.update(CONSOLE_CLIENT_ID, {
    ...current!.metadata,
    scope: 'openid',
    redirect_uris: ['https://evil.example/cb'],
    client_name: 'Renamed',
  });
  assert.equal(await ensureConsoleClient(runtime!), 'updated');
  const stored = (await runtime!.clients.find(CONSOLE_CLIENT_ID))!.metadata;
  assert.equal(stored.scope, 'openid admin');
  assert.deepEqual(stored.redirect_uris, [`${ISSUER}/console/callback`]);
  assert.equal(stored.client_name, 'Renamed', 'the name an operator gave is kept');
  assert.equal(await ensureConsoleClient(runtime!), 'unchanged');
});

test('an issuer on plain http beyond loopback → a 400 TallyError (the server starts without the console)', async () => {
  const other = await testDatabase();
  const runtime = await openRuntime(loadConfig({ DATABASE_URL: other.databaseUrl, LOG_LEVEL: 'silent', ISSUER: 'http://tally.internal:3000' }));
  try {
    await assert.rejects(ensureConsoleClient(runtime), (error: unknown) => error instanceof TallyError && error.status === 400);
  } finally {
    await runtime.close();
    other.cleanup();
  }
});
