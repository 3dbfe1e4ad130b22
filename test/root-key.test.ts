import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { unseal } from '../src/lib/crypto.ts';
import { query } from './helpers/db.ts';
import { createClient, createUser, createWebClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { runCli, startServer, testDatabase, type TestServer } from './helpers/server.ts';

// The root key that seals the stored keys moves from the database into TALLY_SECRET_KEY (as the start-up
// warning asks), and TALLY_SECRET_KEY changes (`new,old`), without invalidating a token, a client secret
// or a signing key; a key that opens nothing stops the start, naming the variable, before anything is written.

const newKey = () => randomBytes(32).toString('base64url');

test('the root key moves into TALLY_SECRET_KEY, then changes; tokens, secrets and keys stay good, and a wrong key stops the start', async () => {
  const db = await testDatabase();
  after(db.cleanup);
  const env = (secretKey: string) => ({ DATABASE_URL: db.databaseUrl, TALLY_SECRET_KEY: secretKey, NODE_ENV: '', LOG_LEVEL: 'info' });
  const keyRows = () => query<{ id: string; material: string }>(db, 'SELECT "id", "material" FROM "keys" ORDER BY "id"');
  /** Asserts that every stored key opens with `secretKey` and that no root key is kept beside them. */
  /** The stored keys that `secretKey` does not open. */
  const unopened = async (secretKey: string) => {
    const rows = await keyRows();
    assert.ok(rows.length >= 6, JSON.stringify(rows.map((r) => r.id)));
    return rows.filter((row) => unseal(row.material, new Map([['env', Buffer.from(secretKey, 'base64url')]]), `key:${row.id}`) === undefined).map((r) => r.id);
  };
  const sealedWith = async (secretKey: string) =>
    assert.deepEqual(await unopened(secretKey), [], 'every stored key opens with the first key of TALLY_SECRET_KEY');

  // First start as the quick start runs it: no TALLY_SECRET_KEY, a root key kept in the database.
  let server: TestServer = await startServer({ dir: db.dir, env: env('') });
  const service = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
  const web = createWebClient(server, { token_mode: 'stateless' });
  const user = createUser(server);
  const serviceToken = await oidc.clientCredentialsGrant(await discover(server, service), { scope: 'api:read' });
  let refreshToken = (await codeFlow(await discover(server, web), user)).refresh_token!;
  const jwks = await (await fetch(`${server.url}/jwks`)).json();
  assert.deepEqual((await keyRows()).filter((r) => r.id === 'root').length, 1, 'the root key is kept in the database');
  await server.stop();

  /** The client secret authenticates, the reference token's sealed payload opens, the signing keys are still published, the stateless refresh token opens. */
  const stillGood = async (running: TestServer) => {
    const serviceConfig = await discover(running, service);
    assert.equal((await oidc.tokenIntrospection(serviceConfig, serviceToken.access_token)).active, true, 'the reference token is active');
    const published = ((await (await fetch(`${running.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
    assert.deepEqual(
      jwks.keys.filter((key: { kid: string }) => !published.includes(key.kid)),
      [],
      'every signing key published before is still published',
    );
    const refreshed = await oidc.refreshTokenGrant(await discover(running, web), refreshToken);
    assert.ok(refreshed.access_token && refreshed.refresh_token, 'the stateless refresh token still refreshes');
    refreshToken = refreshed.refresh_token;
  };

  const first = newKey();
  server = await startServer({ dir: db.dir, env: env(first) });
  await stillGood(server);
  await server.outputMatching(/stored keys sealed again with the first key of TALLY_SECRET_KEY/);
  assert.match(server.output(), /"keptRootDeleted":true/);
  await server.stop();
  await sealedWith(first);
  assert.deepEqual(
    (await keyRows()).filter((r) => r.id === 'root'),
    [],
    'the root key kept in the database is gone once nothing is sealed with it',
  );

  // A new key, the old one after it: everything is sealed again with the new one.
  const second = newKey();
  server = await startServer({ dir: db.dir, env: { ...env(`${second}, ${first}`), KEY_RELOAD_INTERVAL: '1' } });
  await stillGood(server);
  await server.outputMatching(/stored keys sealed again/);
  await sealedWith(second);
  // A process still sealing with the old key (here the CLI, given the keys the other way round, which
  // seals every key again with it and adds signing keys): the running server's next look at the keys
  // table seals them all again with its own first key.
  const cli = runCli(env(`${first},${second}`), ['keys', 'rotate']);
  assert.equal(cli.status, 0, cli.stderr);
  // (A look may fall between the CLI's writes: the one after it takes what is left.)
  for (let i = 0; i < 100 && (await unopened(second)).length > 0; i++) await sleep(100);
  await sealedWith(second);
  assert.ok((server.output().match(/stored keys sealed again/g) ?? []).length >= 2, 'sealed again by the key reload, not only at start');
  await server.stop();

  // Then the new key alone: nothing left to seal again.
  server = await startServer({ dir: db.dir, env: env(second) });
  await stillGood(server);
  assert.doesNotMatch(server.output(), /sealed again/);
  await server.stop();

  // The old key alone, or none: the server and the CLI refuse, naming the variable, without a stack,
  // and write nothing (no new root key beside keys sealed with another).
  const stored = await keyRows();
  for (const [secretKey, why] of [
    [first, /TALLY_SECRET_KEY does not open the stored key/],
    ['', /TALLY_SECRET_KEY is not set, but the stored keys were sealed with it/],
  ] as const) {
    await assert.rejects(startServer({ dir: db.dir, env: env(secretKey) }), (error: Error) => {
      assert.match(error.message, /server exited with 2/);
      assert.match(error.message, why);
      assert.doesNotMatch(error.message, /\n\s+at /, 'no stack trace');
      return true;
    });
    const cli = runCli(env(secretKey), ['keys', 'rotate']);
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, why);
  }
  assert.deepEqual(await keyRows(), stored, 'the refused starts wrote nothing');
});

test('TALLY_SECRET_KEY: each key of the list must be 32 bytes, base64url', () => {
  const cli = runCli({ TALLY_SECRET_KEY: `${newKey()},c2hvcnQ` }, ['migrate']);
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(
    cli.stderr,
    /Invalid environment variable TALLY_SECRET_KEY=.*must be 32 bytes, base64url-encoded \(to change keys: the new one, a comma, the old one\)/,
  );
});
