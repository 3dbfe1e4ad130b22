import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { distDir, workDir } from './tally.ts';

export interface ComponentCost {
  what: string;
  /** Fastest of three rounds, µs per call (the least disturbed by other load). */
  us: number;
  /** Median of the three rounds. */
  median?: number;
  calls: number;
}

async function time(what: string, budgetMs: number, fn: () => unknown): Promise<ComponentCost> {
  for (let i = 0; i < 50; i++) await fn();
  let calls = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs) {
    for (let i = 0; i < 20; i++) await fn();
    calls += 20;
  }
  return { what, us: ((performance.now() - t0) * 1000) / calls, calls };
}

/**
 * What one database call costs in-process, on a fresh SQLite file with Tally's schema: through Prisma
 * (which the admin API, listing and pruning use), through the server's own stores (statements
 * prepared once, writes of one event-loop turn committed together), and through better-sqlite3 alone.
 */
export async function componentCosts(budgetMs = 800): Promise<ComponentCost[]> {
  const file = join(workDir, 'components.db');
  for (const s of ['', '-wal', '-shm']) rmSync(file + s, { force: true });
  const url = `file:${file}`;
  const load = (p: string) => import(pathToFileURL(join(distDir, p)).href);
  const { runMigrations } = await load('storage/migrate.js');
  const { openStorage } = await load('storage/database.js');
  const { createLedgerStore } = await load('storage/ledger.js');
  await runMigrations(url);
  const storage = await openStorage({ databaseUrl: url });
  const db = storage.db;
  const ledger = createLedgerStore(storage.db, storage.sql);
  const raw = new Database(file);
  raw.pragma('synchronous = NORMAL');
  const out: ComponentCost[] = [];
  try {
    const now = new Date();
    const clientId = randomUUID();
    await db.client.create({
      data: {
        id: clientId,
        metadata: JSON.stringify({ client_id: clientId, client_name: 'x', grant_types: ['client_credentials'] }),
        secretHash: '$argon2id$v=19$m=19456,t=2,p=1$x',
        createdAt: now,
        updatedAt: now,
      },
    });
    const payload = `payload-1.${randomBytes(300).toString('base64url')}`;
    const entry = () => ({
      id: randomUUID(),
      lookupHash: randomBytes(32).toString('base64url'),
      type: 'access_token',
      format: 'reference',
      clientId,
      subject: clientId,
      grantId: null,
      sessionUid: null,
      scope: 'api:read',
      audience: 'http://localhost',
      payload,
      userCodeHash: null,
      createdAt: now,
      expiresAt: new Date(now.getTime() + 3600_000),
    });
    const known = entry();
    await ledger.create(known);

    const select = raw.prepare('SELECT * FROM token_entries WHERE lookup_hash = ?');
    const insert = raw.prepare(
      'INSERT INTO token_entries (id, lookup_hash, type, format, status, subject, client_id, scope, audience, payload, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const rawInsert = () => {
      const e = entry();
      insert.run(
        e.id,
        e.lookupHash,
        e.type,
        e.format,
        'valid',
        e.subject,
        e.clientId,
        e.scope,
        e.audience,
        e.payload,
        e.createdAt.toISOString(),
        e.expiresAt.toISOString(),
      );
    };
    // 20 inserts issued in one turn, as concurrent requests issue them: timed per insert.
    const GROUP = 20;
    const groupedInserts = () => Promise.all(Array.from({ length: GROUP }, () => ledger.create(entry())));
    const items: { what: string; per?: number; fn: () => unknown }[] = [
      { what: 'Prisma `tokenEntry.findUnique` by lookup_hash', fn: () => db.tokenEntry.findUnique({ where: { lookupHash: known.lookupHash } }) },
      { what: "the server's `ledger.findByLookupHash` (a statement prepared once)", fn: () => ledger.findByLookupHash(known.lookupHash) },
      { what: 'better-sqlite3 alone, the same SELECT, prepared once', fn: () => select.get(known.lookupHash) },
      {
        what: 'better-sqlite3 alone, the same SELECT, prepared on every call (what the Prisma adapter does)',
        fn: () => raw.prepare('SELECT * FROM token_entries WHERE lookup_hash = ?').get(known.lookupHash),
      },
      { what: 'Prisma `tokenEntry.create` (a reference token; its own commit)', fn: () => db.tokenEntry.create({ data: { ...entry(), status: 'valid' } }) },
      { what: "the server's `ledger.create`, one at a time (a commit each)", fn: () => ledger.create(entry()) },
      { what: `the server's \`ledger.create\`, ${GROUP} issued together (one commit), per insert`, per: GROUP, fn: groupedInserts },
      { what: 'better-sqlite3 alone, the same INSERT (a commit each)', fn: rawInsert },
    ];
    // Rounds interleaved over the items, so that a burst of load elsewhere hits one round, not one item.
    const samples = items.map(() => [] as ComponentCost[]);
    for (let round = 0; round < 3; round++) {
      for (const [i, item] of items.entries()) {
        const cost = await time(item.what, budgetMs / 3, item.fn);
        samples[i]!.push({ ...cost, us: cost.us / (item.per ?? 1), calls: cost.calls * (item.per ?? 1) });
      }
    }
    for (const [i, item] of items.entries()) {
      const us = samples[i]!.map((c) => c.us).sort((a, b) => a - b);
      out.push({ what: item.what, us: us[0]!, median: us[1]!, calls: samples[i]!.reduce((n, c) => n + c.calls, 0) });
    }
  } finally {
    raw.close();
    await storage.close();
  }
  return out;
}
