import { resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient as SqliteClient } from './generated/sqlite/client.js';
import { PrismaClient as PostgresClient } from './generated/postgresql/client.js';

/** Both generated clients share one model API (one schema); the SQLite one names the type. */
export type Db = SqliteClient;
export type Dialect = 'sqlite' | 'postgresql';

export function dialectOf(databaseUrl: string): Dialect {
  return databaseUrl.startsWith('file:') ? 'sqlite' : 'postgresql';
}

/** `file:./data/tally.db` → an absolute path, relative to the working directory. */
export function sqliteFilePath(databaseUrl: string): string {
  return resolve(databaseUrl.slice('file:'.length).replace(/^\/\//, ''));
}

export interface DatabaseOptions {
  databaseUrl: string;
  poolSize?: number;
}

export function openDatabase({ databaseUrl, poolSize = 10 }: DatabaseOptions): Db {
  if (dialectOf(databaseUrl) === 'sqlite') {
    const file = sqliteFilePath(databaseUrl);
    mkdirSync(dirname(file), { recursive: true });
    return new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: file, timeout: 10_000 }) });
  }
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize });
  return new PostgresClient({ adapter }).$extends({ query: { $allModels: { $allOperations: matchNothingOnNul } } }) as unknown as Db;
}

/** What a read or conditional write answers when its filter can match no row. */
const NO_MATCH: Record<string, unknown> = { findUnique: null, findFirst: null, findMany: [], count: 0, updateMany: { count: 0 }, deleteMany: { count: 0 } };

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(containsNul);
  return typeof value === 'object' && value !== null && !(value instanceof Date) && Object.values(value).some(containsNul);
}

/**
 * PostgreSQL text cannot hold U+0000 and rejects any query parameter containing one (error 22021),
 * where SQLite just finds nothing. No stored value can hold one, so a lookup by such a value (a
 * client_id, a username, an id in an admin URL) matches nothing, as on SQLite, instead of failing.
 */
function matchNothingOnNul({ operation, args, query }: { operation: string; args: unknown; query: (args: unknown) => Promise<unknown> }): Promise<unknown> {
  if (operation in NO_MATCH && containsNul((args as { where?: unknown } | undefined)?.where)) return Promise.resolve(NO_MATCH[operation]);
  return query(args);
}

/** True when the database answers a trivial query within `timeoutMs`. */
export async function pingDatabase(db: Db, timeoutMs = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => {
    timer = setTimeout(() => done(false), timeoutMs);
  });
  try {
    // A real table, so that a locked or unreachable database shows (SELECT 1 alone never touches it).
    return await Promise.race([db.$queryRawUnsafe('SELECT 1 FROM "_tally_migrations" LIMIT 1').then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Prisma's "record not found" and "unique constraint" codes, mapped once here. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'P2002';
}
