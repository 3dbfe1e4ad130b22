import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { TallyError } from '../lib/errors.js';
import { dialectOf, sqliteFilePath, type Dialect } from './database.js';

/** migrations/<dialect>/NNNN_name.sql, committed and forward-only. */
export const migrationsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** A migration that cannot run (a missing or edited file): for the operator to read, like a bad variable. */
export class MigrationError extends TallyError {
  constructor(message: string) {
    super(500, 'migration_failed', message, { expose: true });
  }
}

export function readMigrations(dialect: Dialect, root = migrationsRoot): Migration[] {
  const dir = join(root, dialect);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(dir, file), 'utf8');
      return { name: file.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** Which migrations to run, after checking that none already applied was edited or removed. */
function pending(all: Migration[], applied: Map<string, string>): Migration[] {
  for (const [name, checksum] of applied) {
    const file = all.find((m) => m.name === name);
    if (!file) throw new MigrationError(`migration ${name} was applied but its file is missing`);
    if (file.checksum !== checksum) {
      throw new MigrationError(`migration ${name} was edited after it was applied (checksum mismatch)`);
    }
  }
  return all.filter((m) => !applied.has(m.name));
}

const HISTORY_TABLE = `CREATE TABLE IF NOT EXISTS "_tally_migrations" (
  "name" TEXT PRIMARY KEY, "checksum" TEXT NOT NULL, "applied_at" TEXT NOT NULL)`;

function migrateSqlite(databaseUrl: string, migrations: Migration[]): string[] {
  const file = sqliteFilePath(databaseUrl);
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { timeout: 10_000 });
  try {
    // WAL lets readers (the server) go on while a writer (the CLI, a prune) works.
    db.pragma('journal_mode = WAL');
    db.exec(HISTORY_TABLE);
    // IMMEDIATE takes the write lock first, so two processes starting together migrate once.
    const run = db.transaction(() => {
      const rows = db.prepare('SELECT name, checksum FROM _tally_migrations').all() as { name: string; checksum: string }[];
      const todo = pending(migrations, new Map(rows.map((r) => [r.name, r.checksum])));
      for (const m of todo) {
        db.exec(m.sql);
        db.prepare('INSERT INTO _tally_migrations (name, checksum, applied_at) VALUES (?, ?, ?)').run(m.name, m.checksum, new Date().toISOString());
      }
      return todo.map((m) => m.name);
    });
    return run.immediate();
  } finally {
    db.close();
  }
}

// An arbitrary constant: replicas starting together serialise on it and migrate once.
const ADVISORY_LOCK_KEY = 7_411_820_231;

async function migratePostgres(databaseUrl: string, migrations: Migration[]): Promise<string[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    await client.query(HISTORY_TABLE);
    const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM _tally_migrations');
    const todo = pending(migrations, new Map(rows.map((r) => [r.name, r.checksum])));
    for (const m of todo) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO _tally_migrations (name, checksum, applied_at) VALUES ($1, $2, $3)', [m.name, m.checksum, new Date().toISOString()]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
    return todo.map((m) => m.name);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/** Applies every pending migration; returns the names applied (empty when up to date). */
export async function runMigrations(databaseUrl: string, root = migrationsRoot): Promise<string[]> {
  const dialect = dialectOf(databaseUrl);
  const migrations = readMigrations(dialect, root);
  return dialect === 'sqlite' ? migrateSqlite(databaseUrl, migrations) : migratePostgres(databaseUrl, migrations);
}
