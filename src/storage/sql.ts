import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSqliteReader } from './sqlite-reader.js';

/**
 * Statements prepared once, for the queries every protocol request makes (token, client, revocation
 * and session lookups). Prisma stays for everything else: through its adapters a query costs 20–40
 * times more CPU than a prepared statement here, which made up about half of a token request's cost
 * (bench/ANALYSIS.md). Write SQL with `?` placeholders and double-quoted identifiers: it runs on both.
 * Timestamp columns read back as Dates on both, as Prisma reads them.
 */
export interface Sql {
  readonly dialect: 'sqlite' | 'postgresql';
  all<T>(text: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T>(text: string, params?: readonly SqlValue[], options?: ReadOptions): Promise<T | undefined>;
  /**
   * A read that may take long (one that counts a day of the ledger): on SQLite it runs on a worker
   * thread's connection (sqlite-reader.ts), so that the event loop goes on meanwhile; on PostgreSQL
   * `all`, which never holds it.
   */
  allInBackground<T>(text: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a write; answers the number of rows changed. */
  run(text: string, params?: readonly SqlValue[]): Promise<number>;
  /** Connections in use, idle and awaited (PostgreSQL); undefined for the embedded database. */
  poolStats(): { total: number; idle: number; waiting: number } | undefined;
  close(): Promise<void>;
}

export type SqlValue = string | number | Date | null;

export interface ReadOptions {
  /**
   * SQLite: this read may share one read transaction with the other such reads of the same turn of
   * the event loop (a snapshot taken within the turn, so after every write acknowledged to anyone
   * before the turn's requests were read), instead of beginning and ending its own (about 8 µs of
   * system calls and log checks against 1 µs for the read). For the reads every client
   * authentication makes; a read that must see a write made earlier in the same turn (through Prisma,
   * say) does not ask for it. PostgreSQL: no difference.
   */
  turnSnapshot?: boolean;
}

/** A unique or primary-key violation, from either driver or from Prisma. */
export function isDuplicateKey(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === 'P2002' || code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

// ---- SQLite -------------------------------------------------------------------------------------

// SQLite has no date type: Prisma declares DateTime columns DATETIME and stores text in this format,
// on which text comparisons depend. Dates are written and read back here, and nowhere else.
const sqliteDate = (date: Date) => date.toISOString().replace('Z', '+00:00');
const DATETIME = 'DATETIME';

/** A prepared statement and, for one that returns rows, which of its columns are dates. */
interface SqliteStatement {
  statement: Database.Statement;
  dates?: string[];
}

/** Turns a row's DATETIME columns (text) into Dates, in place. */
function readDates(row: Record<string, unknown> | undefined, dates: string[]) {
  if (row) for (const name of dates) if (typeof row[name] === 'string') row[name] = new Date(row[name]);
  return row;
}
/** The same for every row of a result. */
function readAllDates(rows: Record<string, unknown>[], dates: string[]) {
  if (dates.length > 0) for (const row of rows) readDates(row, dates);
}
const BUSY_GIVE_UP_MS = 10_000;
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

const isBusy = (error: unknown) => ((error as { code?: string }).code ?? '').startsWith('SQLITE_BUSY');

interface PendingWrite {
  statement: Database.Statement;
  params: unknown[];
  resolve(changes: number): void;
  reject(error: unknown): void;
}

/**
 * A second connection to the file, beside Prisma's. It never waits inside SQLite (timeout 0): a
 * synchronous busy wait would block the event loop, and with it a Prisma transaction holding the
 * lock in this very process. A busy statement is retried after a short asynchronous pause instead.
 *
 * Writes are committed in groups: those issued in one turn of the event loop run in one transaction,
 * and each answers once that transaction is committed. Under load, one commit then serves many
 * requests; a lone write waits for nothing but its own commit.
 */
export function openSqliteSql(file: string, { autoCheckpoint = true } = {}): Sql & { setAutoCheckpoint(on: boolean): void; hold(): () => void } {
  const db = new Database(file, { timeout: 0 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // When the log starts over, a file that a burst made larger is cut back to this size.
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
  const setAutoCheckpoint = (on: boolean) => db.pragma(`wal_autocheckpoint = ${on ? 1000 : 0}`);
  setAutoCheckpoint(autoCheckpoint);
  const statements = new Map<string, SqliteStatement>();
  const prepare = (text: string) => {
    let prepared = statements.get(text);
    if (!prepared) {
      prepared = { statement: db.prepare(text) };
      statements.set(text, prepared);
    }
    return prepared;
  };
  /** A statement that returns rows, with its date columns known (worked out once, from their declared type). */
  const reader = (text: string) => {
    const prepared = prepare(text);
    prepared.dates ??= prepared.statement.columns().flatMap((column) => (column.type?.toUpperCase() === DATETIME ? [column.name] : []));
    return prepared as Required<SqliteStatement>;
  };
  const bind = (params: readonly SqlValue[]) => params.map((p) => (p instanceof Date ? sqliteDate(p) : p));

  const background = createSqliteReader(file);

  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');

  // This turn's shared read transaction (ReadOptions.turnSnapshot), ended by the next setImmediate,
  // or before anything else runs on this connection: every other statement, and each group commit,
  // runs outside it, as before.
  const beginRead = db.prepare('BEGIN DEFERRED');
  let snapshot = false;
  const endSnapshot = () => {
    if (!snapshot) return;
    snapshot = false;
    if (db.inTransaction) commit.run();
  };
  const within = (statement: Database.Statement, options: ReadOptions | undefined) => {
    if (!options?.turnSnapshot || !statement.readonly) return endSnapshot();
    if (snapshot) return;
    beginRead.run();
    snapshot = true;
    setImmediate(endSnapshot);
  };

  async function withRetry<T>(work: () => T): Promise<T> {
    const started = Date.now();
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      try {
        return work();
      } catch (error) {
        // A busy read starts again in a read transaction of its own (a shared one may hold an old snapshot).
        endSnapshot();
        if (!isBusy(error) || Date.now() - started > BUSY_GIVE_UP_MS) throw error;
        await sleep(pause);
      }
    }
  }
  let queue: PendingWrite[] = [];
  let flushing: Promise<void> | undefined;
  // Set while the checkpoint worker starts the log over (sqlite-checkpointer.ts): commits wait for it.
  let held: Promise<void> | undefined;

  /** Runs every queued write in one transaction; a failed statement fails alone (SQLite undoes just it). */
  function commitGroup(group: PendingWrite[]): void {
    endSnapshot();
    begin.run();
    const results: ({ changes: number } | { error: unknown })[] = [];
    try {
      for (const write of group) {
        try {
          results.push({ changes: write.statement.run(...write.params).changes });
        } catch (error) {
          // An error that ends the transaction (disk full, I/O) fails the whole group.
          if (!db.inTransaction) throw error;
          results.push({ error });
        }
      }
      commit.run();
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
    group.forEach((write, i) => {
      const result = results[i]!;
      if ('error' in result) write.reject(result.error);
      else write.resolve(result.changes);
    });
  }

  async function flush(): Promise<void> {
    await new Promise<void>((done) => setImmediate(done));
    while (queue.length > 0) {
      while (held) await held;
      const group = queue;
      queue = [];
      try {
        await withRetry(() => commitGroup(group));
      } catch (error) {
        for (const write of group) write.reject(error);
      }
    }
    flushing = undefined;
  }

  return {
    dialect: 'sqlite',
    all: <T>(text: string, params: readonly SqlValue[] = []) =>
      withRetry(() => {
        const { statement, dates } = reader(text);
        within(statement, undefined);
        const rows = statement.all(...bind(params)) as Record<string, unknown>[];
        readAllDates(rows, dates);
        return rows as T[];
      }),
    get: <T>(text: string, params: readonly SqlValue[] = [], options?: ReadOptions) =>
      withRetry(() => {
        const { statement, dates } = reader(text);
        within(statement, options);
        return readDates(statement.get(...bind(params)) as Record<string, unknown> | undefined, dates) as T | undefined;
      }),
    async allInBackground<T>(text: string, params: readonly SqlValue[] = []) {
      const { rows, dates } = await background.all(text, bind(params));
      readAllDates(rows, dates);
      return rows as T[];
    },
    run(text, params = []) {
      return new Promise<number>((resolve, reject) => {
        queue.push({ statement: prepare(text).statement, params: bind(params), resolve, reject });
        flushing ??= flush();
      });
    },
    poolStats: () => undefined,
    setAutoCheckpoint,
    /** Holds commits not yet begun until the returned function is called (the checkpoint worker's CommitGate). */
    hold() {
      let release!: () => void;
      held = new Promise<void>((resolve) => {
        release = () => {
          held = undefined;
          resolve();
        };
      });
      return release;
    },
    async close() {
      await flushing;
      await background.stop();
      endSnapshot();
      db.close();
    },
  };
}
