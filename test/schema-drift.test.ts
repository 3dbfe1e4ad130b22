import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runMigrations } from '../src/storage/migrate.ts';
import { query } from './helpers/db.ts';
import { onPostgres, root, sqliteOnly, tempDatabase, testDatabase } from './helpers/server.ts';

interface Column {
  column: string;
  type: string;
  nullable: boolean;
  autoincrement?: boolean;
}

/** Tables and columns as prisma/schema.prisma declares them (the one source of truth). */
function modelTables(): Map<string, Column[]> {
  const schema = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8');
  const tables = new Map<string, Column[]>();
  for (const [, name, body] of schema.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    const table = /@@map\("([^"]+)"\)/.exec(body!)?.[1] ?? name!;
    const columns: Column[] = [];
    for (const line of body!.split('\n')) {
      const field = /^\s+(\w+)\s+(String|DateTime|Int|Boolean|BigInt)(\?)?(.*)$/.exec(line);
      if (!field) continue;
      columns.push({
        column: /@map\("([^"]+)"\)/.exec(field[4]!)?.[1] ?? field[1]!,
        type: field[2]!,
        nullable: field[3] === '?',
        autoincrement: field[4]!.includes('autoincrement()'),
      });
    }
    tables.set(table, columns);
  }
  return tables;
}

const SQLITE_TYPES: Record<string, string> = { String: 'TEXT', DateTime: 'DATETIME', Int: 'INTEGER', Boolean: 'BOOLEAN', BigInt: 'BIGINT' };
const POSTGRES_TYPES: Record<string, string> = { String: 'TEXT', DateTime: 'TIMESTAMP(3)', Int: 'INTEGER', Boolean: 'BOOLEAN', BigInt: 'BIGINT' };

/** CREATE TABLE (and ALTER TABLE … ADD COLUMN) statements of a dialect's migrations, as columns. */
function migrationTables(dialect: string): Map<string, Column[]> {
  const dir = join(root, 'migrations', dialect);
  const sql = readdirSync(dir)
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  const tables = new Map<string, Column[]>();
  for (const [, table, body] of sql.matchAll(/CREATE TABLE "(\w+)" \(([\s\S]*?)\n\)(?: WITHOUT ROWID)?;/g)) {
    const columns = [...body!.matchAll(/^\s+"(\w+)" ([A-Z0-9()]+)( NOT NULL)?/gm)].map(([, column, type, notNull]) => ({
      column: column!,
      type: type!,
      nullable: !notNull,
    }));
    tables.set(table!, columns);
  }
  // Columns added by later migrations.
  for (const [, table, column, type, notNull] of sql.matchAll(/ALTER TABLE "(\w+)" ADD COLUMN "(\w+)" ([A-Z0-9()]+)( NOT NULL)?/g)) {
    tables.get(table!)?.push({ column: column!, type: type!, nullable: !notNull });
  }
  return tables;
}

describe('the Prisma model, the SQL migrations and the generated clients agree', () => {
  const db = tempDatabase();
  after(db.cleanup);
  const model = modelTables();

  test('the SQLite database built by the migrations has exactly the model’s tables and columns', {
    skip: sqliteOnly('the PostgreSQL database is checked by the next test'),
  }, async () => {
    await runMigrations(`file:${db.dbFile}`);
    const sqlite = new Database(db.dbFile, { readonly: true });
    try {
      const tables = (
        sqlite.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name != '_tally_migrations'").all() as {
          name: string;
        }[]
      ).map((t) => t.name);
      assert.deepEqual(tables.sort(), [...model.keys()].sort());
      for (const [table, columns] of model) {
        const actual = (sqlite.prepare(`PRAGMA table_info("${table}")`).all() as { name: string; type: string; notnull: number; pk: number }[]).map((c) => ({
          column: c.name,
          type: c.type,
          nullable: c.notnull === 0 && c.pk === 0,
        }));
        const expected = columns.map((c) => ({ column: c.column, type: SQLITE_TYPES[c.type]!, nullable: c.nullable }));
        assert.deepEqual(
          actual.sort((a, b) => a.column.localeCompare(b.column)),
          expected.sort((a, b) => a.column.localeCompare(b.column)),
          `table ${table}`,
        );
      }
    } finally {
      sqlite.close();
    }
  });

  test('the PostgreSQL database built by the migrations has exactly the model’s tables and columns', {
    skip: !onPostgres && 'run in the PostgreSQL pass',
  }, async () => {
    const db = await testDatabase();
    try {
      await runMigrations(db.databaseUrl);
      const columns = await query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
        db,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name != '_tally_migrations'",
      );
      assert.deepEqual([...new Set(columns.map((c) => c.table_name))].sort(), [...model.keys()].sort());
      const PG_TYPES: Record<string, string> = {
        String: 'text',
        DateTime: 'timestamp without time zone',
        Int: 'integer',
        Boolean: 'boolean',
        BigInt: 'bigint',
      };
      const byName = (a: { column: string }, b: { column: string }) => a.column.localeCompare(b.column);
      for (const [table, expected] of model) {
        const actual = columns
          .filter((c) => c.table_name === table)
          .map((c) => ({ column: c.column_name, type: c.data_type, nullable: c.is_nullable === 'YES' }));
        assert.deepEqual(
          actual.sort(byName),
          expected.map((c) => ({ column: c.column, type: PG_TYPES[c.type]!, nullable: c.nullable })).sort(byName),
          `table ${table}`,
        );
      }
    } finally {
      db.cleanup();
    }
  });

  test('the PostgreSQL migrations declare the same tables and columns', () => {
    const postgres = migrationTables('postgresql');
    assert.deepEqual([...postgres.keys()].sort(), [...model.keys()].sort());
    for (const [table, columns] of model) {
      const expected = columns
        .map((c) => ({ column: c.column, type: c.autoincrement ? 'SERIAL' : POSTGRES_TYPES[c.type]!, nullable: c.nullable }))
        .sort((a, b) => a.column.localeCompare(b.column));
      const actual = postgres
        .get(table)!
        .map((c) => ({ ...c, nullable: c.nullable }))
        .sort((a, b) => a.column.localeCompare(b.column));
      // Primary-key columns are NOT NULL in the model's sense even where the SQL leaves it implicit.
      assert.deepEqual(actual, expected, `table ${table}`);
    }
  });

  test('both dialects have the same migration names', () => {
    const names = (dialect: string) => readdirSync(join(root, 'migrations', dialect)).sort();
    assert.deepEqual(names('postgresql'), names('sqlite'));
  });

  test('the two generated clients carry the same data model', () => {
    const dataModel = (dialect: string) =>
      /config\.runtimeDataModel = JSON\.parse\((".*")\)/.exec(readFileSync(join(root, 'src/storage/generated', dialect, 'internal/class.ts'), 'utf8'))![1]!;
    assert.equal(dataModel('postgresql'), dataModel('sqlite'));
  });
});
