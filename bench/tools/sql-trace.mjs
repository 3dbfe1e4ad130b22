// Investigation aid (not part of `npm run bench`): preload into the server with
//   node --import ./bench/tools/sql-trace.mjs bench/.build/dist/main.js
// Counts every SQL statement better-sqlite3 prepares; writes the counts to $SQL_TRACE_FILE on SIGUSR2.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');
const counts = new Map();
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function tracedPrepare(sql, ...rest) {
  const key = sql.replace(/\s+/g, ' ').slice(0, 400);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return prepare.call(this, sql, ...rest);
};
const exec = Database.prototype.exec;
Database.prototype.exec = function tracedExec(sql) {
  const key = `EXEC ${sql.replace(/\s+/g, ' ').slice(0, 200)}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return exec.call(this, sql);
};
process.on('SIGUSR2', () => {
  writeFileSync(process.env.SQL_TRACE_FILE ?? '/tmp/sql-trace.json', JSON.stringify([...counts].sort((a, b) => b[1] - a[1]), null, 1));
  counts.clear();
});
