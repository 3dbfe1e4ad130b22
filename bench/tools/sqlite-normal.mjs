// Experiment (not part of the default benchmark): preload into the server to run every SQLite
// connection with PRAGMA synchronous = NORMAL (safe with WAL; a power loss may drop the last
// commits, never corrupts), which is what this benchmark suggests src/storage/database.ts set.
//   BENCH_SERVER_ARGS="--import ./bench/tools/sqlite-normal.mjs" npm run bench
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');
const tuned = new WeakSet();
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function prepareOnTuned(...args) {
  if (!tuned.has(this) && !this.inTransaction) {
    tuned.add(this);
    if (!this.readonly && !this.memory) this.pragma('synchronous = NORMAL');
  }
  return prepare.apply(this, args);
};
