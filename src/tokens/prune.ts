import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../storage/database.js';
import { pruneProviderRecordsBatch, type LedgerStore } from '../storage/ledger.js';
import type { RevocationStore } from '../storage/revocations.js';

export interface PruneOptions {
  /** Only what expired more than this many seconds ago (default 0). */
  olderThanSeconds?: number;
  /** Rows deleted per statement (default 1000): short write locks, so requests go on meanwhile. */
  batchSize?: number;
  /** Stop after about this many rows in all (default: no limit). */
  limit?: number;
}

export interface PruneResult {
  deleted: number;
  token_entries: number;
  revoked_tokens: number;
  provider_records: number;
  batches: number;
}

/**
 * Deletes what can never be active again: ledger entries, revoked-list rows and revocation events,
 * and provider records whose expiry is past. Never an entry of an unexpired token. Runs as its own
 * job (CLI or admin API), never inside a token request, in batches with a pause between them.
 */
export async function prune(deps: { db: Db; ledger: LedgerStore; revocations: RevocationStore }, options: PruneOptions = {}): Promise<PruneResult> {
  const before = new Date(Date.now() - (options.olderThanSeconds ?? 0) * 1000);
  const batchSize = options.batchSize ?? 1000;
  const limit = options.limit ?? Infinity;
  const result: PruneResult = { deleted: 0, token_entries: 0, revoked_tokens: 0, provider_records: 0, batches: 0 };
  const steps: [keyof PruneResult, (size: number) => Promise<number>][] = [
    ['token_entries', (size) => deps.ledger.pruneBatch(before, size)],
    ['revoked_tokens', (size) => deps.revocations.pruneBatch(before, size)],
    ['provider_records', (size) => pruneProviderRecordsBatch(deps.db, before, size)],
  ];
  for (const [key, step] of steps) {
    while (result.deleted < limit) {
      const count = await step(Math.min(batchSize, limit - result.deleted));
      if (count === 0) break;
      result[key] += count;
      result.deleted += count;
      result.batches += 1;
      // Yield between batches so concurrent requests get the database.
      await sleep(5);
    }
  }
  return result;
}
