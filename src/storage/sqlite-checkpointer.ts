import { startSqliteWorker, stopSqliteWorker } from './sqlite-worker.js';

// Run in a worker thread (sqlite-worker.ts): its connection copies the write-ahead log
// into the database file, fsync included, while the main thread goes on answering requests.
//
// PASSIVE copies without holding anyone up, but under a steady stream of commits the log is never
// wholly copied when the next commit begins, and SQLite starts the log over from its beginning only
// then: the file grows without end (about 12 KB per token issued). So once the log passes
// restartPages, the worker asks the main thread to hold its commits ('hold'), and when they are held
// ('held') runs RESTART, which copies the few frames PASSIVE left and makes the next commit write
// from the start of the file; then the commits go on ('released').
const WORKER_BODY = `
let holding = false;
// The log's length right after the last RESTART: until a commit starts it over, it stays that long,
// and there is nothing to hold commits for.
let restartedAt = -1;
const timer = setInterval(() => {
  if (holding) return;
  try {
    const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)');
    if (log >= workerData.restartPages && log !== restartedAt) {
      holding = true;
      parentPort.postMessage('hold');
    }
  } catch (error) {
    // Busy or locked: the next round tries again.
  }
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'held') {
    try {
      const [{ busy, log }] = db.pragma('wal_checkpoint(RESTART)');
      if (!busy) restartedAt = log;
    } catch (error) {
      // Busy (a Prisma write) or locked: the log starts over at a later round.
    }
    holding = false;
    parentPort.postMessage('released');
    return;
  }
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/** The commits the checkpoint worker may hold while it starts the log over (sql.ts). */
export interface CommitGate {
  /** Holds commits not yet begun until the returned function is called. */
  hold(): () => void;
}

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * SQLite checkpoints the write-ahead log when a commit makes it pass 1,000 pages, inside that commit:
 * on the event loop, with an fsync, a 15–20 ms stall for whichever request made it. The server's
 * connections turn that off (`wal_autocheckpoint = 0`) and this worker checkpoints every
 * `intervalMs` instead, and starts the log over once it passes `restartPages`, holding this process's
 * commits through `commits` meanwhile (and waiting at most `restartWaitMs` for another process's).
 * 4,000 pages (16 MB), not SQLite's 1,000: a hold lasts 6–10 ms (up to 30), and refreshes at 400–500/s
 * fill 1,000 pages in one 200 ms round, so commits were held at every round; at 4,000, a quarter as
 * often, the median refresh at a steady load took 2.6–2.8 ms instead of 5.3 (bench/ANALYSIS.md).
 * If the worker stops, `onFailure` lets the connections take the job back.
 */
export function startCheckpointer(
  file: string,
  commits: CommitGate,
  onFailure: (error: unknown) => void,
  { intervalMs = 200, restartPages = 4000, restartWaitMs = 100, holdAtMostMs = 1000 } = {},
): Checkpointer {
  const worker = startSqliteWorker(file, WORKER_BODY, { busyTimeoutMs: restartWaitMs, intervalMs, restartPages });
  // Set once stopped on purpose or failed: a crash emits 'error' and then 'exit', reported once.
  let done = false;
  // Commits are held for one RESTART at a time, and never longer than holdAtMostMs.
  let release: (() => void) | undefined;
  let releaseTimer: NodeJS.Timeout | undefined;
  const releaseCommits = () => {
    clearTimeout(releaseTimer);
    if (!release) return;
    release();
    release = undefined;
    if (!done) worker.unref();
  };
  worker.on('message', (message) => {
    if (message === 'hold') {
      releaseCommits();
      // The main thread commits synchronously, so none is under way while this runs.
      release = commits.hold();
      // Held commits are awaited: the process must stay up until the worker lets them go.
      worker.ref();
      releaseTimer = setTimeout(releaseCommits, holdAtMostMs).unref();
      worker.postMessage('held');
    } else if (message === 'released') {
      releaseCommits();
    }
  });
  const fail = (error: unknown) => {
    releaseCommits();
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
      await stopSqliteWorker(worker);
      releaseCommits();
    },
  };
}
