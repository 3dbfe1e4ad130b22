// Investigation aid (not part of `npm run bench`): preload into the server with
//   node --import ./bench/tools/sql-trace.mjs bench/.build/dist/main.js
// Counts every SQL statement better-sqlite3 runs (Prisma prepares each time; the server's own
// statements are prepared once and run many times); writes the counts to $SQL_TRACE_FILE on SIGUSR2.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');
const counts = new Map();
const count = (sql) => {
  const key = sql.replace(/\s+/g, ' ').slice(0, 400);
  counts.set(key, (counts.get(key) ?? 0) + 1);
};
// Statements are counted when they run, whatever prepared them and how often.
const prepare = Database.prototype.prepare;
let patched = false;
Database.prototype.prepare = function tracedPrepare(sql, ...rest) {
  const statement = prepare.call(this, sql, ...rest);
  if (!patched) {
    patched = true;
    const proto = Object.getPrototypeOf(statement);
    for (const method of ['run', 'get', 'all', 'iterate']) {
      const original = proto[method];
      proto[method] = function tracedRun(...args) {
        if (!/^(BEGIN|COMMIT|ROLLBACK)/.test(this.source)) count(this.source);
        return original.apply(this, args);
      };
    }
  }
  return statement;
};
const exec = Database.prototype.exec;
Database.prototype.exec = function tracedExec(sql) {
  const key = `EXEC ${sql.replace(/\s+/g, ' ').slice(0, 200)}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return exec.call(this, sql);
};
process.on('SIGUSR2', () => {
  writeFileSync(
    process.env.SQL_TRACE_FILE ?? '/tmp/sql-trace.json',
    JSON.stringify(
      [...counts].sort((a, b) => b[1] - a[1]),
      null,
      1,
    ),
  );
  counts.clear();
});
