import pg from 'pg';
import { containsNul } from './nul.js';
import type { Sql, SqlValue } from './sql.js';
import { createTurnBatch, type BatchedAsk } from './turn-batch.js';
import { isDatabaseUnavailable } from './unavailable.js';

// The PostgreSQL half of storage/sql.ts (its interface and rules are there), in a module of its own so
// that a server on SQLite never loads pg (storage/database.ts imports this one only for PostgreSQL).

// TIMESTAMP(3) columns hold UTC (as Prisma writes them); pg would read them as local time.
const TIMESTAMP_OID = 1114;
const parseUtcTimestamp = (text: string) => new Date(`${text.replace(' ', 'T')}Z`);
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === TIMESTAMP_OID ? parseUtcTimestamp : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * `INSERT INTO "table" (columns) VALUES (one row)`, optionally `ON CONFLICT (key) DO UPDATE SET …`, and
 * no RETURNING: [, everything up to the row, the row, the conflict clause]. Each row of such a statement
 * changes exactly one row, so a batch that succeeds answers 1 to each. Not so for a conditional upsert
 * (`… DO UPDATE SET … WHERE …`, the replay marks): a row whose condition fails changes nothing and must
 * answer 0, and its clause's own placeholders would not repeat with the rows; it runs alone
 * (`batchable`).
 */
const SINGLE_ROW_INSERT =
  /^(\s*INSERT INTO "\w+" \([^()]*\)\s+VALUES\s+)(\((?:[^()']|'[^']*')*\))((?:\s+ON CONFLICT \([^()]*\) DO UPDATE SET (?:(?!RETURNING)[^;])*)?)\s*$/;
const MAX_BATCH = 50;

/** A one-row insert whose conflict clause has no condition and no placeholder of its own; else null. */
function batchable(shape: RegExpExecArray | null): RegExpExecArray | null {
  return shape && !/\bWHERE\b|\?/i.test(shape[3] ?? '') ? shape : null;
}

/** `?` placeholders → `$1, $2, …`, or from `$(after + 1)` (the SQL here has no `?` anywhere else). */
function numbered(text: string, after = 0): string {
  let n = after;
  return text.replace(/\?/g, () => `$${++n}`);
}

/**
 * A read that may go out with others of its statement in one UNION ALL: a plain SELECT (not one that
 * locks rows, whose locks are the transaction's, nor a write with RETURNING, which must run once).
 */
const BATCHABLE_READ = /^\s*SELECT\b/i;
const LOCKING_READ = /\bFOR\s+(UPDATE|NO\s+KEY\s+UPDATE|SHARE|KEY\s+SHARE)\b/i;
/** The column that tells which read of a batch a row answers (last, so that removing it is cheap). */
const READ_INDEX = 'tally_read';

/**
 * The most reads of one statement that go out as one. A union is prepared once per connection for each
 * size it is sent at: sizes are powers of two (a batch is padded with its last read), so that each
 * statement has at most five unions.
 */
const MAX_READ_BATCH = 32;
const unionSize = (reads: number) => 2 ** Math.ceil(Math.log2(reads));

/** The reads of one statement, `count` times over, as one: each one's rows tagged with its index. */
function unionOfReads(text: string, count: number): string {
  const placeholders = text.split('?').length - 1;
  return Array.from({ length: count }, (_, i) => `SELECT q${i}.*, ${i} AS "${READ_INDEX}" FROM (${numbered(text, i * placeholders)}) q${i}`).join(
    ' UNION ALL ',
  );
}

/** What `make` works out for a statement's text, once per text (the statements are a fixed set); `set` replaces it. */
function perStatement<V>(make: (text: string) => V) {
  const known = new Map<string, V>();
  const get = (text: string): V => {
    let value = known.get(text);
    if (value === undefined && !known.has(text)) known.set(text, (value = make(text)));
    return value as V;
  };
  return Object.assign(get, { set: (text: string, value: V) => void known.set(text, value) });
}

/**
 * Named statements on the pool Prisma uses too: each connection prepares a statement the first time
 * it runs it. A parameter holding U+0000 matches nothing (see nul.ts).
 */
export function openPostgresSql(pool: pg.Pool): Sql {
  const names = new Map<string, { name: string; text: string }>();
  const statement = (text: string, numberedText: (text: string) => string = numbered) => {
    let known = names.get(text);
    if (!known) {
      known = { name: `tally_${names.size}`, text: numberedText(text) };
      names.set(text, known);
    }
    return known;
  };
  const bind = (params: readonly SqlValue[]) => params.map((p) => (p instanceof Date ? p.toISOString() : p));
  const query = async <T>(text: string, params: readonly SqlValue[]) => {
    const { name, text: numberedText } = statement(text);
    return pool.query<T & pg.QueryResultRow>({ name, text: numberedText, values: bind(params), types });
  };

  // One-row reads of one statement issued in one event-loop turn go out as one statement (up to
  // MAX_READ_BATCH): each round trip costs this process 65-120 µs of the driver's and the pool's work,
  // and under load a turn's requests make the same reads side by side (the client authentication's
  // two, the ledger's lookup, the grant, the account). Each read answers its own first row, as it
  // would alone. A batch that fails is retried read by read, so that only the failing one fails.
  type QueuedRead = BatchedAsk<readonly SqlValue[], Record<string, unknown> | undefined>;
  async function readOne(text: string, params: readonly SqlValue[]) {
    return (await query<Record<string, unknown>>(text, params)).rows[0];
  }
  async function answerReads(text: string, reads: QueuedRead[]) {
    if (reads.length === 1) {
      const [read] = reads as [QueuedRead];
      return readOne(text, read.ask).then(read.resolve, read.reject);
    }
    let rows: Record<string, unknown>[];
    try {
      const size = unionSize(reads.length);
      const { name, text: union } = statement(`${size}\n${text}`, () => unionOfReads(text, size));
      const values = Array.from({ length: size }, (_, i) => bind(reads[Math.min(i, reads.length - 1)]!.ask)).flat();
      rows = (await pool.query<Record<string, unknown>>({ name, text: union, values, types })).rows;
    } catch (error) {
      // Read by read would fail each read again, waiting for the database once more per read.
      if (isDatabaseUnavailable(error)) throw error;
      // A statement PostgreSQL will not take as a union (class 42: its types cannot be resolved
      // together, say) goes out alone from now on.
      if (String((error as { code?: unknown }).code).startsWith('42')) isBatchableRead.set(text, false);
      await Promise.all(reads.map((read) => readOne(text, read.ask).then(read.resolve, read.reject)));
      return;
    }
    const answers: (Record<string, unknown> | undefined)[] = new Array(reads.length);
    for (const row of rows) {
      const index = row[READ_INDEX] as number;
      delete row[READ_INDEX];
      // The padding's rows (index past the reads) answer nobody.
      if (index < reads.length) answers[index] ??= row;
    }
    for (const [i, read] of reads.entries()) read.resolve(answers[i]);
  }
  const readBatch = perStatement((text) =>
    createTurnBatch<readonly SqlValue[], Record<string, unknown> | undefined>((reads) => answerReads(text, reads), MAX_READ_BATCH),
  );
  const isBatchableRead = perStatement((text) => BATCHABLE_READ.test(text) && !LOCKING_READ.test(text));
  // One-row INSERTs (and upserts) issued in one event-loop turn go out as multi-row ones (up to
  // MAX_BATCH rows): one round trip and one commit instead of one each, about a tenth of the driver's
  // CPU per row. A batch that fails is retried row by row, so that only the failing row fails.
  type QueuedRow = BatchedAsk<readonly SqlValue[], number>;
  // The statements are a fixed set: whether each is a one-row insert is worked out once.
  const insertShape = perStatement((text) => batchable(SINGLE_ROW_INSERT.exec(text)));
  const insertBatch = perStatement((text) => createTurnBatch<readonly SqlValue[], number>((rows) => insertRows(text, insertShape(text)!, rows), MAX_BATCH));
  async function insertRows(text: string, tuple: RegExpExecArray, rows: QueuedRow[]) {
    const one = async (row: QueuedRow) => query(text, row.ask).then((result) => row.resolve(result.rowCount ?? 0), row.reject);
    if (rows.length === 1) return one(rows[0]!);
    const multi = `${tuple[1]}${Array.from({ length: rows.length }, () => tuple[2]).join(', ')}${tuple[3]}`;
    try {
      await query(
        multi,
        rows.flatMap((row) => row.ask),
      );
      for (const row of rows) row.resolve(1);
    } catch (error) {
      // Row by row would fail each row again, waiting for the database once more per row.
      if (isDatabaseUnavailable(error)) throw error;
      await Promise.all(rows.map(one));
    }
  }

  async function all<T>(text: string, params: readonly SqlValue[] = []) {
    if (containsNul(params)) return [];
    return (await query<T>(text, params)).rows as T[];
  }

  return {
    dialect: 'postgresql',
    all,
    // The server runs it: the event loop is never held.
    allInBackground: all,
    async get<T>(text: string, params: readonly SqlValue[] = []) {
      if (containsNul(params)) return undefined;
      if (isBatchableRead(text)) return (await readBatch(text)(params)) as T | undefined;
      return (await query<T>(text, params)).rows[0] as T | undefined;
    },
    async run(text, params = []) {
      if (containsNul(params) && /^\s*(UPDATE|DELETE)/i.test(text)) return 0;
      if (insertShape(text)) return insertBatch(text)(params);
      return (await query(text, params)).rowCount ?? 0;
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await pool.end();
    },
  };
}
