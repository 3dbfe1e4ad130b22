// What one ledger INSERT costs in-process on SQLite, and which part of it is the random page of the
// lookup-hash index: CPU per row (process.cpuUsage) of a client-credentials-shaped entry, in groups of
// G rows per commit (as sql.ts groups a turn's writes), on a migrated file holding N entries, for:
//   tally        the lookup hash as Tally stores it (SHA-256 of 256 random bits: a random key)
//   time-ordered the same with the hash led by a time-ordered prefix (the counterfactual: keys that append)
//   no-secondary Tally's keys without the six secondary indexes
//   partial      Tally's keys, with the indexes of grant_id and user_code_hash holding only non-NULL values
// Variants interleaved, each on its own file. Ids and hashes are made before the clock starts.
// usage: npx tsx bench/tools/ledger-insert.ts [entries=150000] [group=16] [rounds=3]
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { randomToken, sha256, timeOrderedUuid } from '../../src/lib/crypto.ts';
import { runMigrations } from '../../src/storage/migrate.ts';

const [entries = 150_000, group = 16, rounds = 3] = process.argv.slice(2).map(Number);
const ROWS = 20_000;
const variants = ['tally', 'time-ordered', 'no-secondary', 'partial'] as const;
type Variant = (typeof variants)[number];

const INSERT = `INSERT INTO "token_entries" ("id", "lookup_hash", "type", "format", "status", "subject", "client_id", "grant_id", "session_uid",
  "scope", "audience", "payload", "user_code_hash", "cnf_jkt", "cnf_x5t_s256", "created_at", "expires_at")
  VALUES (?, ?, 'access_token', 'reference', 'valid', 'svc', 'svc', NULL, NULL, 'api:read', 'https://api.example', ?, NULL, NULL, NULL, ?, ?)`;
const SECONDARY = ['subject_created_at', 'client_id_created_at', 'grant_id', 'expires_at', 'user_code_hash', 'created_at_id'];
const payload = 'k1.'.padEnd(420, 'x');
const sqliteDate = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');

let sequence = 0;
function row(variant: Variant): string[] {
  const now = Date.now();
  const hash = sha256(randomToken());
  const lookup = variant === 'time-ordered' ? `${String(now).padStart(13, '0')}${String(++sequence).padStart(8, '0')}.${hash}` : hash;
  return [timeOrderedUuid(now), lookup, payload, sqliteDate(now), sqliteDate(now + 3_600_000)];
}

async function open(variant: Variant) {
  const file = `/tmp/tally-ledger-insert-${variant}.db`;
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  await runMigrations(`file:${file}`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  if (variant === 'no-secondary') for (const name of SECONDARY) db.exec(`DROP INDEX "token_entries_${name}_idx"`);
  if (variant === 'partial')
    for (const column of ['grant_id', 'user_code_hash'])
      db.exec(
        `DROP INDEX "token_entries_${column}_idx"; CREATE INDEX "token_entries_${column}_idx" ON "token_entries"("${column}") WHERE "${column}" IS NOT NULL`,
      );
  const insert = db.prepare(INSERT);
  // The ledger before the measured rows: random keys, as any ledger Tally has written.
  const fill = db.transaction((rows: string[][]) => {
    for (const values of rows) insert.run(...values);
  });
  for (let done = 0; done < entries; done += 10_000) fill(Array.from({ length: Math.min(10_000, entries - done) }, () => row('tally')));
  db.pragma('wal_checkpoint(TRUNCATE)');
  return { db, insert, begin: db.prepare('BEGIN IMMEDIATE'), commit: db.prepare('COMMIT') };
}

const opened = new Map<Variant, Awaited<ReturnType<typeof open>>>();
for (const variant of variants) opened.set(variant, await open(variant));
const results = new Map<Variant, number[]>(variants.map((v) => [v, []]));
for (let round = 0; round < rounds; round++) {
  for (const variant of round % 2 ? [...variants].reverse() : variants) {
    const { db, insert, begin, commit } = opened.get(variant)!;
    const rows = Array.from({ length: ROWS }, () => row(variant));
    const before = process.cpuUsage();
    for (let i = 0; i < rows.length; ) {
      begin.run();
      for (let j = 0; j < group && i < rows.length; j++) insert.run(...rows[i++]!);
      commit.run();
    }
    const used = process.cpuUsage(before);
    results.get(variant)!.push((used.user + used.system) / ROWS);
    db.pragma('wal_checkpoint(TRUNCATE)');
  }
}
console.log(`| variant (${entries.toLocaleString('en')} entries, ${group} rows per commit) | µs of CPU per insert, each round |`);
console.log('|---|---|');
for (const [variant, figures] of results) console.log(`| ${variant} | ${figures.map((f) => f.toFixed(1)).join(', ')} |`);
for (const { db } of opened.values()) db.close();
