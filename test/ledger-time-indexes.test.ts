import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import Database from 'better-sqlite3';
import { PrismaClient } from '../src/storage/generated/sqlite/client.ts';
import { createLedgerStore } from '../src/storage/ledger.ts';
import type { Sql } from '../src/storage/sql.ts';
import { createTokenStatsStore } from '../src/storage/token-stats.ts';
import { onPostgres } from './helpers/server.ts';
import { useTestStorage } from './helpers/storage.ts';

// On SQLite a query runs on the event loop: one that reads every ledger entry holds every request for
// as long (about 0.4–1 s on 1,000,000 entries). The admin listing and the statistics read ranges of
// indexes instead (migration 0013). Checked on the queries as sent, with SQLite's own query plans.
const skip = onPostgres && 'SQLite: a scan there holds the event loop';
const opened = useTestStorage();

/** SQLite's plan for a statement: one line per step, e.g. "SEARCH token_entries USING INDEX …". */
function plan(file: string, text: string, params: unknown[]): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...params) as { detail: string }[]).map((row) => row.detail);
  } finally {
    db.close();
  }
}

test("the statistics' queries of the ledger read index ranges, never the whole table", { skip }, async () => {
  const sent: [string, unknown[]][] = [];
  const sql = opened.storage.sql;
  const recording: Sql = {
    ...sql,
    all: (text, params = []) => {
      sent.push([text, [...params]]);
      return sql.all(text, params);
    },
    get: (text, params = []) => {
      sent.push([text, [...params]]);
      return sql.get(text, params);
    },
    allInBackground: (text, params = []) => {
      sent.push([text, [...params]]);
      return sql.allInBackground(text, params);
    },
  };
  const stats = createTokenStatsStore(recording);
  const to = new Date();
  const from = new Date(to.getTime() - 86_400_000);
  await stats.issuedAccessTokens(from, to, 720);
  await stats.revokedAccessTokens(from, to, 720);
  const ledgerQueries = sent.filter(([text]) => text.includes('"token_entries"'));
  assert.equal(ledgerQueries.length, 2);
  for (const [text, params] of ledgerQueries) {
    // better-sqlite3 binds text, not Date objects: as the statement layer binds them.
    const steps = plan(
      opened.database.dbFile!,
      text,
      params.map((p) => (p instanceof Date ? p.toISOString().replace('Z', '+00:00') : p)),
    );
    assert.ok(
      steps.some((step) => /^SEARCH token_entries USING (COVERING )?INDEX token_entries_(created_at_id|revoked_at)_idx/.test(step)),
      `${text}\n${steps.join('\n')}`,
    );
    assert.ok(!steps.some((step) => /^SCAN token_entries/.test(step)), steps.join('\n'));
  }
});

test('the admin listing, newest first, reads the first rows of an index instead of sorting the ledger', { skip }, async () => {
  const db = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: opened.database.dbFile! }), log: [{ emit: 'event', level: 'query' }] });
  const sent: { query: string; params: string }[] = [];
  db.$on('query', (event) => sent.push({ query: event.query, params: event.params }));
  try {
    const ledger = createLedgerStore(db as never, opened.storage.sql);
    await ledger.list({}, 50);
    await ledger.list({ status: 'valid', type: 'access_token' }, 50);
    await ledger.list({ status: 'revoked' }, 50, { createdAt: new Date(), id: '0196f000-0000-7000-8000-000000000000' });
  } finally {
    await db.$disconnect();
  }
  const listings = sent.filter((s) => s.query.includes('ORDER BY'));
  assert.equal(listings.length, 3, JSON.stringify(sent));
  for (const { query, params } of listings) {
    const steps = plan(opened.database.dbFile!, query, JSON.parse(params) as unknown[]);
    assert.ok(
      steps.some((step) => /token_entries USING (COVERING )?INDEX token_entries_created_at_id_idx/.test(step)),
      `${query}\n${steps.join('\n')}`,
    );
    assert.ok(!steps.some((step) => step.includes('TEMP B-TREE FOR ORDER BY')), `sorts the whole ledger:\n${steps.join('\n')}`);
  }
});
