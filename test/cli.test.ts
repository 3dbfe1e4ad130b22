import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { query } from './helpers/db.ts';
import { readMigrations } from '../src/storage/migrate.ts';
import { runCli, testDatabase, type TestDatabase } from './helpers/server.ts';

describe('the tally CLI, as written in the contract', () => {
  let db: TestDatabase;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    db = await testDatabase();
    env = { DATABASE_URL: db.databaseUrl };
  });
  after(() => db.cleanup());

  test('--help → usage for the CLI and for each command', () => {
    const top = runCli(env, ['--help']);
    assert.equal(top.status, 0);
    for (const command of ['migrate', 'users create', 'clients create', 'prune', 'keys rotate']) assert.match(top.stdout, new RegExp(command));
    for (const command of [['migrate'], ['users', 'create'], ['clients', 'create'], ['keys', 'rotate']]) {
      const help = runCli(env, [...command, '--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, new RegExp(`Usage: tally ${command.join(' ')}`));
    }
  });

  test('unknown command → usage and a non-zero exit', () => {
    const result = runCli(env, ['frobnicate']);
    assert.notEqual(result.status, 0);
    assert.match(result.stdout, /Usage: tally/);
  });

  test('migrate → applies once, then nothing to do', () => {
    const first = runCli(env, ['migrate']);
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(
      JSON.parse(first.stdout).applied,
      readMigrations(db.dialect).map((m) => m.name),
    );
    const second = runCli(env, ['migrate']);
    assert.deepEqual(JSON.parse(second.stdout).applied, []);
  });

  test('users create --password-stdin → the user as JSON; the password is stored as argon2id only', async () => {
    const result = runCli(
      env,
      ['users', 'create', '--username', 'carol', '--email', 'carol@example.com', '--name', 'Carol', '--password-stdin'],
      'correct horse battery\n',
    );
    assert.equal(result.status, 0, result.stderr);
    const user = JSON.parse(result.stdout);
    assert.equal(user.username, 'carol');
    assert.equal(user.email, 'carol@example.com');
    assert.equal(user.name, 'Carol');
    assert.match(user.id, /^[0-9a-f-]{36}$/);
    assert.equal(user.password, undefined);
    const [row] = await query<{ password_hash: string }>(db, 'SELECT password_hash FROM users WHERE id = ?', user.id);
    assert.match(row!.password_hash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  });

  test('users create with a taken username → non-zero exit with a message', () => {
    const result = runCli(env, ['users', 'create', '--username', 'carol', '--password-stdin'], 'another password\n');
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /carol is taken/);
  });

  test('users create with a short password → refused', () => {
    const result = runCli(env, ['users', 'create', '--username', 'dave', '--password-stdin'], 'short\n');
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /at least 8/);
  });

  test('clients create --json → the client with its secret this once; the secret is stored hashed', async () => {
    const result = runCli(env, [
      'clients',
      'create',
      '--json',
      JSON.stringify({ client_name: 'Reports', grant_types: ['client_credentials'], response_types: [], scope: 'reports:read', token_mode: 'jwt' }),
    ]);
    assert.equal(result.status, 0, result.stderr);
    const client = JSON.parse(result.stdout);
    assert.match(client.client_secret, /^[A-Za-z0-9_-]{43}$/, '256 random bits');
    assert.equal(client.token_mode, 'jwt');
    assert.equal(client.scope, 'reports:read');
    const [row] = await query<{ secret_hash: string; metadata: string }>(db, 'SELECT secret_hash, metadata FROM clients WHERE id = ?', client.client_id);
    assert.match(row!.secret_hash, /^hmac-sha256\$client-secret-1\$[A-Za-z0-9_-]{43}$/, 'a keyed hash (HMAC-SHA-256)');
    assert.ok(!row!.metadata.includes(client.client_secret));
  });

  for (const [why, metadata, field] of [
    [
      'client_secret_jwt',
      { token_endpoint_auth_method: 'client_secret_jwt', redirect_uris: ['https://app.example.com/cb'] },
      /client_secret_jwt is not supported/,
    ],
    ['a relative redirect URI', { redirect_uris: ['/cb'] }, /redirect_uris/],
    ['a bad token_mode', { grant_types: ['client_credentials'], response_types: [], token_mode: 'opaque' }, /token_mode/],
    ['a secret chosen by the caller', { client_secret: 'mine', grant_types: ['client_credentials'], response_types: [] }, /client_secret is generated/],
  ] as const) {
    test(`clients create with ${why} → refused with a clear message, nothing stored`, async () => {
      const before = (await query<{ n: number }>(db, 'SELECT COUNT(*) AS n FROM clients'))[0]!.n;
      const result = runCli(env, ['clients', 'create', '--json', JSON.stringify(metadata)]);
      assert.notEqual(result.status, 0);
      assert.match(result.stderr, field);
      assert.equal((await query<{ n: number }>(db, 'SELECT COUNT(*) AS n FROM clients'))[0]!.n, before);
    });
  }

  test('bad input is refused as the admin API refuses it: exit 2 and a message naming what, nothing stored', async () => {
    const count = async (table: string) => (await query<{ n: number }>(db, `SELECT COUNT(*) AS n FROM ${table}`))[0]!.n;
    const [users, clients, keys] = [await count('users'), await count('clients'), await count('keys')];
    const refused = (args: string[], message: RegExp, input?: string) => {
      const result = runCli(env, args, input);
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'a message, not a stack trace');
    };
    const user = (...extra: string[]) => ['users', 'create', '--password-stdin', ...extra];
    refused(user('--username', 'two words'), /^tally: username: may contain/, 'a long password\n');
    refused(user('--username', 'u'.repeat(300)), /username/, 'a long password\n');
    refused(user('--username', 'erin', '--email', 'not-an-email'), /email/, 'a long password\n');
    refused(user('--username', 'erin', '--name', ''), /name/, 'a long password\n');
    refused(
      ['clients', 'create', '--json', '{"client_name":"a","client_name":"b","grant_types":["client_credentials"],"response_types":[]}'],
      /client_name twice/,
    );
    const taken = runCli(env, [
      'clients',
      'create',
      '--json',
      JSON.stringify({ client_id: 'cli-fixed', grant_types: ['client_credentials'], response_types: [] }),
    ]);
    assert.equal(taken.status, 0, taken.stderr);
    refused(['clients', 'create', '--json', JSON.stringify({ client_id: 'cli-fixed', grant_types: ['client_credentials'], response_types: [] })], /cli-fixed/);
    for (const [option, value] of [
      ['--older-than', '9007199254740991'],
      ['--older-than', ''],
      ['--older-than', '-1'],
      ['--batch-size', '99999999999999999999'],
      ['--limit', '1.5'],
    ]) {
      refused(['prune', option!, value!], new RegExp(`${option}`));
    }
    refused(['keys', 'rotate', '--force'], /--force/);
    refused(['migrate', '--dry-run'], /--dry-run/);
    assert.deepEqual([await count('users'), await count('clients'), await count('keys')], [users, clients + 1, keys]);
  });

  test('keys rotate → new ES256 and RS256 keys; the older ones are kept', async () => {
    const signingKeys = async () => (await query<{ n: number }>(db, `SELECT COUNT(*) AS n FROM keys WHERE "use" = 'sig'`))[0]!.n;
    const before = await signingKeys();
    const result = runCli(env, ['keys', 'rotate']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(
      JSON.parse(result.stdout).added.map((k: { alg: string }) => k.alg),
      ['ES256', 'RS256'],
    );
    assert.equal(await signingKeys(), before + 2);
  });
});
