import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Run in a worker thread (CommonJS, no TypeScript): its own connection copies the write-ahead log
// into the database file, fsync included, while the main thread goes on answering requests.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 0 });
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    // Busy or locked: the next round tries again.
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * SQLite checkpoints the write-ahead log when a commit makes it pass 1,000 pages, inside that commit:
 * on the event loop, with an fsync, a 15–20 ms stall for whichever request made it. The server's
 * connections turn that off (`wal_autocheckpoint = 0`) and this worker checkpoints every
 * `intervalMs` instead. If the worker stops, `onFailure` lets the connections take the job back.
 */
export function startCheckpointer(file: string, onFailure: (error: unknown) => void, intervalMs = 200): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, driver, intervalMs } });
  // Set once stopped on purpose or failed: a crash emits 'error' and then 'exit', reported once.
  let done = false;
  const fail = (error: unknown) => {
    if (done) return;
    done = true;
    onFailure(error);
  };
  worker.unref();
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`checkpoint worker exited with code ${code}`)));
  return {
    async stop() {
      if (done) return;
      done = true;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      // Unreferenced, the worker would not keep the process alive long enough to be awaited.
      worker.ref();
      worker.postMessage('stop');
      await exited;
    },
  };
}
