import type { Worker } from 'node:worker_threads';
import { startSqliteWorker, stopSqliteWorker } from './sqlite-worker.js';

// Run in a worker thread (sqlite-worker.ts): its connection runs the reads it is sent and answers their
// rows, with the names of the columns declared DATETIME (the main thread turns those into Dates, as
// sql.ts does for its own reads).
const WORKER_BODY = `
const statements = new Map();
parentPort.on('message', (message) => {
  if (message === 'stop') {
    db.close();
    parentPort.close();
    return;
  }
  const { id, text, params } = message;
  try {
    let prepared = statements.get(text);
    if (!prepared) {
      const statement = db.prepare(text);
      if (!statement.readonly) throw new Error('only reads run in the background');
      const dates = statement.columns().filter((c) => (c.type || '').toUpperCase() === 'DATETIME').map((c) => c.name);
      prepared = { statement, dates };
      statements.set(text, prepared);
    }
    parentPort.postMessage({ id, rows: prepared.statement.all(...params), dates: prepared.dates });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: error.message, code: error.code } });
  }
});
`;

export interface BackgroundRows {
  rows: Record<string, unknown>[];
  /** The columns declared DATETIME (text in the rows). */
  dates: string[];
}

export interface SqliteReader {
  /** Runs a read (parameters already bound as SQLite takes them) on the worker's connection. */
  all(text: string, params: readonly unknown[]): Promise<BackgroundRows>;
  /** Whether a worker is up (one is started by a read and stopped after `idleMs` without one). */
  running(): boolean;
  stop(): Promise<void>;
}

type Pending = { resolve(rows: BackgroundRows): void; reject(error: unknown): void };

/**
 * Reads that take long (the admin statistics over a day of a busy ledger: half a second) run here, in
 * a worker thread with its own connection, instead of on the event loop, where better-sqlite3 runs
 * every statement and a long one holds every request. Started when first asked and stopped after
 * `idleMs` without a read: a worker with its connection and page cache weighs about 20 MiB of resident
 * memory, for reads an administrator asks for now and then. A worker that fails fails the reads it
 * had, and the next read starts another.
 */
export function createSqliteReader(file: string, { busyTimeoutMs = 5000, idleMs = 60_000 } = {}): SqliteReader {
  let worker: Worker | undefined;
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let idleTimer: NodeJS.Timeout | undefined;

  const failAll = (error: unknown) => {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };

  function runningWorker(): Worker {
    if (worker) return worker;
    const fresh = startSqliteWorker(file, WORKER_BODY, { busyTimeoutMs });
    fresh.on('message', ({ id, rows, dates, error }: { id: number; error?: { message: string; code?: string } } & BackgroundRows) => {
      const waiting = pending.get(id);
      if (!waiting) return;
      pending.delete(id);
      if (pending.size === 0) {
        fresh.unref();
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => pending.size === 0 && stopWorker(), idleMs).unref();
      }
      if (error) waiting.reject(Object.assign(new Error(error.message), { code: error.code }));
      else waiting.resolve({ rows, dates });
    });
    const lost = (error: unknown) => {
      if (worker !== fresh) return;
      worker = undefined;
      failAll(error);
    };
    fresh.on('error', lost);
    fresh.on('exit', (code) => lost(new Error(`background reader exited with code ${code}`)));
    worker = fresh;
    return fresh;
  }

  async function stopWorker() {
    clearTimeout(idleTimer);
    const stopping = worker;
    if (!stopping) return;
    worker = undefined;
    // Reads sent before 'stop' are answered first; any left then fail. Reads sent since go to a new worker.
    const sentBefore = [...pending.keys()];
    await stopSqliteWorker(stopping);
    for (const id of sentBefore) {
      pending.get(id)?.reject(new Error('the background reader was stopped'));
      pending.delete(id);
    }
  }

  return {
    all(text, params) {
      return new Promise<BackgroundRows>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        clearTimeout(idleTimer);
        // The process stays up for a read it awaits, not for an idle worker.
        const reader = runningWorker();
        reader.ref();
        reader.postMessage({ id, text, params });
      });
    },
    running: () => worker !== undefined,
    stop: stopWorker,
  };
}
