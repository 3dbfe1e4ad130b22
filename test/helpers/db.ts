// Straight access to a test server's database, SQLite or PostgreSQL alike, for checks and seeding
// that go around the server. Write SQL both accept: double-quoted identifiers, `?` placeholders
// (numbered for PostgreSQL here), times as Date parameters (stored the way Prisma stores them).
// Results differ only where the engines do: a comparison is 0/1 on SQLite, false/true on PostgreSQL.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';

/** A TestServer or a TestDatabase (anything with its DATABASE_URL), or the URL itself. */
export type DatabaseTarget = string | { databaseUrl: string };

const urlOf = (target: DatabaseTarget) => (typeof target === 'string' ? target : target.databaseUrl);
const sqliteFile = (url: string) => (url.startsWith('file:') ? url.slice('file:'.length) : undefined);

/** Prisma stores a DateTime as `2024-01-01T00:00:00.000+00:00` text in SQLite, as UTC `timestamp(3)` in PostgreSQL. */
function parameters(params: unknown[], sqlite: boolean): unknown[] {
  return params.map((value) => (value instanceof Date ? (sqlite ? value.toISOString().replace('Z', '+00:00') : value.toISOString()) : value));
}

/** `?` → `$1`, `$2`… outside quoted strings and identifiers. */
function numbered(sql: string): string {
  let n = 0;
  let quote: string | undefined;
  let out = '';
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '?') {
      out += `$${++n}`;
      continue;
    }
    out += ch;
  }
  return out;
}

// COUNT(*) and BIGINT columns come back as numbers, as from SQLite.
const getTypeParser = ((oid: number, format?: string) =>
  oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'];

async function withPostgres<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, types: { getTypeParser } });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

function withSqlite<T>(file: string, readonly: boolean, run: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly, fileMustExist: true, timeout: 10_000 });
  try {
    return run(db);
  } finally {
    db.close();
  }
}

async function tablesOf(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  return rows.map((r) => r.name);
}

/** Row counts of every table. */
export async function countRows(target: DatabaseTarget): Promise<Record<string, number>> {
  const url = urlOf(target);
  const file = sqliteFile(url);
  if (file) {
    return withSqlite(file, true, (db) => {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
      return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n]));
    });
  }
  return withPostgres(url, async (client) => {
    const tables = await tablesOf(client);
    if (!tables.length) return {};
    const { rows } = await client.query<{ name: string; n: number }>(tables.map((t) => `SELECT '${t}' AS name, COUNT(*) AS n FROM "${t}"`).join(' UNION ALL '));
    return Object.fromEntries(rows.map((r) => [r.name, r.n]));
  });
}

/** The rows a query returns. */
export async function query<T>(target: DatabaseTarget, sql: string, ...params: unknown[]): Promise<T[]> {
  const url = urlOf(target);
  const file = sqliteFile(url);
  if (file) return withSqlite(file, true, (db) => db.prepare(sql).all(...parameters(params, true)) as T[]);
  return withPostgres(url, async (client) => (await client.query(numbered(sql), parameters(params, false))).rows as T[]);
}

/** Runs a write; returns the number of rows it changed. */
export async function execute(target: DatabaseTarget, sql: string, ...params: unknown[]): Promise<number> {
  const url = urlOf(target);
  const file = sqliteFile(url);
  if (file) return withSqlite(file, false, (db) => db.prepare(sql).run(...parameters(params, true)).changes);
  return withPostgres(url, async (client) => (await client.query(numbered(sql), parameters(params, false))).rowCount ?? 0);
}

/** Inserts many rows in one transaction (multi-row INSERTs on PostgreSQL). */
export async function insertRows(target: DatabaseTarget, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  const url = urlOf(target);
  const file = sqliteFile(url);
  const names = columns.map((c) => `"${c}"`).join(', ');
  if (file) {
    withSqlite(file, false, (db) => {
      const insert = db.prepare(`INSERT INTO "${table}" (${names}) VALUES (${columns.map(() => '?').join(', ')})`);
      db.transaction(() => {
        for (const row of rows) insert.run(...parameters(row, true));
      })();
    });
    return;
  }
  await withPostgres(url, async (client) => {
    const perStatement = Math.floor(60_000 / columns.length); // a statement takes at most 65,535 parameters
    await client.query('BEGIN');
    try {
      for (let start = 0; start < rows.length; start += perStatement) {
        const batch = rows.slice(start, start + perStatement);
        const values = batch.map((_, i) => `(${columns.map((__, j) => `$${i * columns.length + j + 1}`).join(', ')})`).join(', ');
        await client.query(
          `INSERT INTO "${table}" (${names}) VALUES ${values}`,
          batch.flatMap((row) => parameters(row, false)),
        );
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  });
}

/**
 * Everything the database holds, as bytes to search for values that must not be stored. SQLite: every
 * byte of the file, its WAL and shared memory (free pages included). PostgreSQL: every column of every
 * row of every table, as text.
 */
export async function databaseContents(target: DatabaseTarget): Promise<Buffer> {
  const url = urlOf(target);
  const file = sqliteFile(url);
  if (file) {
    const dir = dirname(file);
    return Buffer.concat(
      readdirSync(dir)
        .filter((f) => f.startsWith(basename(file)))
        .map((f) => readFileSync(join(dir, f))),
    );
  }
  return withPostgres(url, async (client) => {
    const { rows: columns } = await client.query<{ table_name: string; column_name: string }>(
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    );
    const byTable = new Map<string, typeof columns>();
    for (const c of columns) byTable.set(c.table_name, [...(byTable.get(c.table_name) ?? []), c]);
    const parts: string[] = [];
    for (const [table, cols] of byTable) {
      const { rows } = await client.query<{ row: string }>(
        `SELECT concat_ws(E'\\n', ${cols.map((c) => `"${c.column_name}"::text`).join(', ')}) AS row FROM "${table}"`,
      );
      for (const r of rows) parts.push(r.row);
    }
    return Buffer.from(parts.join('\n'));
  });
}
