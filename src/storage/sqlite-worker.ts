import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * A worker thread with a better-sqlite3 connection of its own to `file` (the background reader, the
 * checkpoint worker). `body` is CommonJS source, not TypeScript (a worker given source needs no build
 * step of its own); it runs with `db` (opened with `busyTimeoutMs`: waiting inside SQLite holds up
 * nobody else there), `workerData` and `parentPort` in scope. The message 'stop' is the body's to handle.
 */
export function startSqliteWorker(file: string, body: string, { busyTimeoutMs, ...data }: { busyTimeoutMs: number } & Record<string, unknown>): Worker {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const source = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: workerData.busyTimeoutMs });
${body}`;
  return new Worker(source, { eval: true, workerData: { ...data, file, driver, busyTimeoutMs } });
}

/** Sends 'stop' and resolves once the worker has exited (referenced meanwhile, so that the process waits for it). */
export function stopSqliteWorker(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.ref();
  worker.postMessage('stop');
  return exited;
}
