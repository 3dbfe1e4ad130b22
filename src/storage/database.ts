import { resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PrismaClient as SqliteClient } from './generated/sqlite/client.js';
import { openSqliteSql, WAL_SIZE_LIMIT, type Sql } from './sql.js';
import { startCheckpointer } from './sqlite-checkpointer.js';
import { matchNothingOnNul } from './nul.js';
import { ConfigError } from '../config/index.js';
import { TallyError } from '../lib/errors.js';
import { isDatabaseUnavailable } from './unavailable.js';

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

/** DATABASE_URL as a message may show it: a PostgreSQL URL without its password. */
export function shownDatabaseUrl(databaseUrl: string): string {
  if (dialectOf(databaseUrl) === 'sqlite') return databaseUrl;
  const url = URL.parse(databaseUrl);
  if (!url) return 'postgresql://…';
  if (url.password) url.password = '***';
  return url.href;
}

// The SQLite file's path cannot work: a directory that is a file, no permission, a read-only disk.
const FILE_CODES = /^(ENOTDIR|EEXIST|EACCES|EPERM|EROFS|EISDIR|ENAMETOOLONG|ELOOP|SQLITE_CANTOPEN|SQLITE_READONLY)(_|$)/;
// PostgreSQL refused who asked (SQLSTATE class 28: user or password) or has no such database (3D000);
// P1000 and P1003 are Prisma's names for the same.
const CREDENTIAL_CODES = /^(28...|3D000|P1000|P1003)$/;

/** The first message in an error or what it wraps (a refused connection to localhost is an AggregateError of two, without one). */
function reasonOf(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e?.message === 'string' && e.message) return e.message;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return reasonOf(e.errors[0]);
  if (e?.cause) return reasonOf(e.cause);
  return String(e?.code ?? error);
}

/**
 * Why the database could not be opened at start, for the operator (the server and the CLI stop with
 * it, exit code 2): a path or credentials that cannot work name DATABASE_URL; a database that does not
 * answer says so. Anything else is passed on as it is (a failure of Tally's, with its stack).
 */
export function explainDatabaseFailure(databaseUrl: string, error: unknown): unknown {
  if (error instanceof TallyError) return error;
  const code = String((error as { code?: unknown })?.code ?? '');
  const shown = JSON.stringify(shownDatabaseUrl(databaseUrl));
  if (FILE_CODES.test(code) || CREDENTIAL_CODES.test(code)) return new ConfigError(`Invalid environment variable DATABASE_URL=${shown}: ${reasonOf(error)}`);
  if (isDatabaseUnavailable(error))
    return new TallyError(503, 'database_unavailable', `the database of DATABASE_URL=${shown} does not answer: ${reasonOf(error)}`, {
      expose: true,
      cause: error,
    });
  return error;
}

export interface DatabaseOptions {
  databaseUrl: string;
  poolSize?: number;
  /** Told when something degrades without failing (the SQLite checkpoint worker stopped). */
  onWarning?: (message: string, error: unknown) => void;
  /**
   * SQLite: checkpoint the write-ahead log in a worker thread (default), or, for a short-lived process
   * such as a CLI command, inside the commit that fills it, as SQLite does by default.
   */
  checkpointWorker?: boolean;
}

/** Prisma for the general case, and prepared statements on the same database for the hot path. */
export interface Storage {
  db: Db;
  sql: Sql;
  close(): Promise<void>;
}

/** How long a PostgreSQL connection, or a free one in the pool, is waited for. */
const CONNECT_TIMEOUT_MS = 5_000;

/** Loads only the dialect's generated client and driver: each brings its own query compiler. */
export async function openStorage({ databaseUrl, poolSize = 10, onWarning, checkpointWorker = true }: DatabaseOptions): Promise<Storage> {
  if (dialectOf(databaseUrl) === 'sqlite') {
    const file = sqliteFilePath(databaseUrl);
    mkdirSync(dirname(file), { recursive: true });
    const [{ PrismaClient }, { PrismaBetterSqlite3 }] = await Promise.all([import('./generated/sqlite/client.js'), import('@prisma/adapter-better-sqlite3')]);
    const db = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: file, timeout: 10_000 }) });
    // WAL (set by the migration runner) with NORMAL sync: durable across crashes of the process, and no
    // fsync per commit; a power loss may drop the last transactions, never corrupt the file.
    await db.$queryRawUnsafe('PRAGMA synchronous = NORMAL');
    await db.$queryRawUnsafe(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT}`);
    const sql = openSqliteSql(file, { autoCheckpoint: !checkpointWorker });
    // Checkpoints run in a worker thread, not in whichever commit fills the log (sqlite-checkpointer.ts).
    if (checkpointWorker) await db.$queryRawUnsafe('PRAGMA wal_autocheckpoint = 0');
    const checkpointer = checkpointWorker
      ? startCheckpointer(file, sql, (error) => {
          onWarning?.('the SQLite checkpoint worker stopped; checkpoints run in commits again', error);
          sql.setAutoCheckpoint(true);
          void db.$queryRawUnsafe('PRAGMA wal_autocheckpoint = 1000').catch(() => undefined);
        })
      : undefined;
    return {
      db,
      sql,
      async close() {
        await checkpointer?.stop();
        await Promise.all([db.$disconnect(), sql.close()]);
      },
    };
  }
  const [{ PrismaClient }, { PrismaPg }, { default: pg }, { openPostgresSql }] = await Promise.all([
    import('./generated/postgresql/client.js'),
    import('@prisma/adapter-pg'),
    import('pg'),
    import('./sql-postgres.js'),
  ]);
  // One pool for both, so DATABASE_POOL_SIZE bounds the connections and /metrics can show their use.
  // A database that does not answer fails a request after CONNECT_TIMEOUT_MS (a 503), never hangs it.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle connection the database dropped (a restart, a network cut) is discarded by the pool and the
  // next query reports the outage; unheard, the pool's 'error' event would end the process.
  pool.on('error', () => undefined);
  const db = new PrismaClient({ adapter: new PrismaPg(pool) }).$extends({ query: { $allModels: { $allOperations: matchNothingOnNul } } }) as unknown as Db;
  const sql = openPostgresSql(pool);
  return {
    db,
    sql,
    async close() {
      await db.$disconnect();
      await sql.close();
    },
  };
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

/** A unique-constraint violation, whether Prisma or a prepared statement reports it. */
export { isDuplicateKey as isUniqueViolation } from './sql.js';
