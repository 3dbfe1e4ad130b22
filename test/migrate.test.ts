import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MigrationError, migrationsRoot, readMigrations, runMigrations } from '../src/storage/migrate.ts';
import { execute, insertRows, query } from './helpers/db.ts';
import { createDatabaseOn, postgresPassServer } from './helpers/postgres.ts';
import { onPostgres, root, tallyArgs, tallyNode, testDialect } from './helpers/server.ts';
import { spawn } from 'node:child_process';

const ALL = readMigrations(testDialect).map((m) => m.name);

// On the suite's dialect: a SQLite file per test, or in the PostgreSQL pass a database per test.
describe(`the migration runner (${testDialect})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-migrate-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A new, empty database: `<dir>/<name>`, or a PostgreSQL database. */
  const newDatabase = async (name: string) => (onPostgres ? createDatabaseOn(await postgresPassServer()) : `file:${join(dir, name)}`);

  function copyOfMigrations() {
    const copy = mkdtempSync(join(dir, 'migrations-'));
    cpSync(migrationsRoot, copy, { recursive: true });
    return copy;
  }

  test('applies every migration once and records it; a second run does nothing', async () => {
    const url = await newDatabase('once.db');
    assert.ok(ALL.length >= 2);
    assert.deepEqual(await runMigrations(url), ALL);
    assert.deepEqual(await runMigrations(url), []);
    const rows = await query<{ name: string; checksum: string }>(url, 'SELECT name, checksum FROM _tally_migrations');
    assert.equal(rows.length, ALL.length);
    assert.match(rows[0]!.checksum, /^[0-9a-f]{64}$/);
    if (!onPostgres) assert.deepEqual(await query<{ journal_mode: string }>(url, 'PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
  });

  test('several processes migrating one database at once → applied exactly once', async () => {
    const url = await newDatabase('racing.db');
    const migrate = () =>
      new Promise<string[]>((done, fail) => {
        const child = spawn(tallyNode, [...tallyArgs('cli/index'), 'migrate'], {
          cwd: root,
          env: { ...process.env, DATABASE_URL: url },
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? done(JSON.parse(out).applied) : fail(new Error(`exit ${code}: ${err}`))));
      });
    const results = await Promise.all([migrate(), migrate(), migrate()]);
    assert.deepEqual(results.flat().sort(), ALL);
  });

  test('an edited migration → refused with a checksum error', async () => {
    const migrations = copyOfMigrations();
    const url = await newDatabase('edited.db');
    await runMigrations(url, migrations);
    appendFileSync(join(migrations, testDialect, '0001_init.sql'), '\n-- edited\n');
    await assert.rejects(runMigrations(url, migrations), (error: unknown) => error instanceof MigrationError && /0001_init.*checksum/.test(error.message));
  });

  test('the server on a database whose applied migration was edited → exit 2 with the reason, no stack trace', async () => {
    const url = await newDatabase('edited-server.db');
    await runMigrations(url);
    await execute(url, `UPDATE "_tally_migrations" SET "checksum" = 'edited' WHERE "name" = '0001_init'`);
    const child = spawn(tallyNode, tallyArgs('main'), {
      cwd: root,
      env: { ...process.env, DATABASE_URL: url, PORT: '0', LOG_LEVEL: 'silent', NODE_NO_WARNINGS: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((done) => child.on('exit', done));
    assert.equal(code, 2, stderr);
    assert.match(stderr, /^tally: migration 0001_init was edited after it was applied/m);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  test('a new migration → only it is applied', async () => {
    const migrations = copyOfMigrations();
    const url = await newDatabase('grow.db');
    await runMigrations(url, migrations);
    writeFileSync(join(migrations, testDialect, '9999_extra.sql'), 'CREATE TABLE "extra" ("id" TEXT NOT NULL PRIMARY KEY);');
    assert.deepEqual(await runMigrations(url, migrations), ['9999_extra']);
  });

  test('0012 moves the one-time marks to replay_marks: the unexpired ones taken before the upgrade are copied, the expired ones are not', async () => {
    const migrations = copyOfMigrations();
    const dir = join(migrations, testDialect);
    // The database as it was before 0012: it and every later migration held back.
    const later = readdirSync(dir).filter((name) => name >= '0012');
    for (const name of later) renameSync(join(dir, name), join(dir, `${name}.held`));
    const file = join(dir, '0012_replay_marks.sql');
    const held = `${file}.held`;
    const url = await newDatabase('marks.db');
    await runMigrations(url, migrations);
    const now = Date.now();
    await insertRows(
      url,
      'provider_records',
      ['model', 'id', 'payload', 'expires_at'],
      [
        ['ReplayDetection', 'live-proof', '', new Date(now + 60_000)],
        ['ReplayDetection', 'webauthn:live-challenge', '', new Date(now + 300_000)],
        ['ReplayDetection', 'expired-proof', '', new Date(now - 60_000)],
        ['Session', 'a-session', 'sealed', new Date(now + 60_000)],
      ],
    );
    renameSync(held, file);
    assert.deepEqual(await runMigrations(url, migrations), ['0012_replay_marks']);
    const marks = await query<{ key: string; expires_at: unknown }>(url, 'SELECT "key", "expires_at" FROM "replay_marks" ORDER BY "key"');
    assert.deepEqual(
      marks.map((m) => m.key),
      ['live-proof', 'webauthn:live-challenge'],
    );
    // Copied as written: the new store compares them with its own dates.
    const [copied] = await query<{ n: number | string }>(url, 'SELECT COUNT(*) AS "n" FROM "replay_marks" WHERE "expires_at" > ?', new Date(now + 59_000));
    assert.equal(Number(copied!.n), 2);
  });

  test('a failing migration → rolled back whole, nothing recorded', async () => {
    const migrations = copyOfMigrations();
    const url = await newDatabase('broken.db');
    await runMigrations(url, migrations);
    writeFileSync(join(migrations, testDialect, '9999_broken.sql'), 'CREATE TABLE "half" ("id" TEXT);\nTHIS IS NOT SQL;');
    await assert.rejects(runMigrations(url, migrations));
    const tables = onPostgres
      ? "SELECT table_name FROM information_schema.tables WHERE table_name = 'half'"
      : "SELECT name FROM sqlite_master WHERE name = 'half'";
    assert.deepEqual(await query(url, tables), []);
    assert.equal((await query(url, 'SELECT name FROM _tally_migrations')).length, ALL.length);
  });
});
