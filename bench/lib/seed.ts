import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';

export interface SeedResult {
  rows: number;
  seconds: number;
  /** Why fewer than the requested rows were written, if so. */
  note?: string;
}

const BATCH = 10_000;

/**
 * Writes `target` filler rows into token_entries (SQLite) in transactions of 10,000, the way the
 * server stores them (ISO dates, a sealed-looking payload of realistic size, random lookup hashes).
 * When `probeRows` rows take long enough that `target` rows would exceed `budgetS` seconds, it stops
 * at `fallback` rows instead. The server may be running: SQLite (WAL) lets it read meanwhile.
 */
export function seedSqliteLedger(dbFile: string, options: { target: number; fallback: number; budgetS: number; probeRows: number }): SeedResult {
  const db = new Database(dbFile, { timeout: 30_000 });
  db.pragma('journal_mode = WAL');
  // A bulk load in the benchmark process: index pages stay in a big cache and commits skip fsync.
  db.pragma('cache_size = -262144');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    `INSERT INTO token_entries (id, lookup_hash, type, format, status, subject, client_id, grant_id, session_uid, scope, audience, payload, user_code_hash, created_at, expires_at, redeemed_at, revoked_at)
     VALUES (?, ?, ?, ?, 'valid', ?, ?, ?, NULL, ?, ?, ?, NULL, ?, ?, NULL, NULL)`,
  );
  const payload = `payload-1.${randomBytes(300).toString('base64url')}`;
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');
  let counter = 0;
  const writeBatch = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) {
      counter++;
      const client = `seed-client-${counter % 500}`;
      const user = counter % 3 === 0 ? null : `seed-user-${counter % 50_000}`;
      const reference = counter % 2 === 0;
      const created = now - (counter % 86_400) * 1000;
      insert.run(
        randomUUID(),
        createHash('sha256').update(randomBytes(16)).digest('base64url'),
        counter % 4 === 0 ? 'refresh_token' : 'access_token',
        reference ? 'reference' : 'jwt',
        user ?? client,
        client,
        user ? `seed-grant-${counter % 200_000}` : null,
        'api:read',
        'http://localhost',
        reference ? payload : null,
        iso(created),
        iso(created + 30 * 86_400_000),
      );
    }
  });

  const started = performance.now();
  let target = options.target;
  let note: string | undefined;
  try {
    while (counter < target) {
      writeBatch(Math.min(BATCH, target - counter));
      if (counter === options.probeRows && target > options.fallback) {
        const projected = ((performance.now() - started) / 1000) * (target / counter);
        if (projected > options.budgetS) {
          note = `${target.toLocaleString('en-US')} rows would have taken about ${projected.toFixed(0)} s here (over the ${options.budgetS} s budget): seeded ${options.fallback.toLocaleString('en-US')} instead`;
          target = options.fallback;
        }
      }
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.exec('ANALYZE token_entries');
  } finally {
    db.close();
  }
  return { rows: counter, seconds: (performance.now() - started) / 1000, ...(note ? { note } : {}) };
}

/** The same for PostgreSQL, through pg, in multi-row INSERTs (generate_series keeps it server-side). */
export async function seedPostgresLedger(databaseUrl: string, rows: number): Promise<SeedResult> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const started = performance.now();
  try {
    const payload = `payload-1.${randomBytes(300).toString('base64url')}`;
    for (let done = 0; done < rows; done += 100_000) {
      const n = Math.min(100_000, rows - done);
      await client.query(
        `INSERT INTO token_entries (id, lookup_hash, type, format, status, subject, client_id, grant_id, scope, audience, payload, created_at, expires_at)
         SELECT gen_random_uuid()::text, encode(sha256(gen_random_uuid()::text::bytea), 'base64'),
                CASE WHEN i % 4 = 0 THEN 'refresh_token' ELSE 'access_token' END,
                CASE WHEN i % 2 = 0 THEN 'reference' ELSE 'jwt' END, 'valid',
                'seed-user-' || (i % 50000), 'seed-client-' || (i % 500), 'seed-grant-' || (i % 200000), 'api:read', 'http://localhost',
                CASE WHEN i % 2 = 0 THEN $1 ELSE NULL END,
                now() - (i % 86400) * interval '1 second', now() + interval '30 days'
         FROM generate_series($2::int, $3::int) AS i`,
        [payload, done + 1, done + n],
      );
    }
    await client.query('ANALYZE token_entries');
  } finally {
    await client.end();
  }
  return { rows, seconds: (performance.now() - started) / 1000 };
}
