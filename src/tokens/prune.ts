import { setTimeout as sleep } from 'node:timers/promises';
import type { LedgerStore } from '../storage/ledger.js';
import type { ProviderRecordStore } from '../storage/provider-records.js';
import type { RevocationEventStore } from '../storage/revocation-events.js';
import type { RevocationFeedStore } from '../storage/revocation-feed.js';
import type { RevokedTokenStore } from '../storage/revoked-tokens.js';
import type { ThrottleCounterStore } from '../storage/throttle-counters.js';
import type { Config } from '../config/index.js';
import type { AuditStore } from '../storage/audit.js';
import type { ReplayMarkStore } from '../storage/replay-marks.js';

export interface PruneDependencies {
  config: Config;
  /** The audit trail: events older than AUDIT_RETENTION_DAYS go too. */
  audit: Pick<AuditStore, 'pruneBatch'>;
  /** One-time marks (DPoP proofs, client assertions, passkey challenges) kept in the database. */
  replayMarks: Pick<ReplayMarkStore, 'pruneBatch'>;
  stores: {
    entries: LedgerStore;
    revokedTokens: RevokedTokenStore;
    revocationEvents: RevocationEventStore;
    providerRecords: ProviderRecordStore;
    revocationFeed: RevocationFeedStore;
    throttleCounters: ThrottleCounterStore;
  };
}

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
  revocation_feed: number;
  /** Expired counts of the throttle (tokens/throttle.ts). */
  throttle_counters: number;
  /** Expired one-time marks (storage/replay-marks.ts). */
  replay_marks: number;
  batches: number;
  /** Audit events older than AUDIT_RETENTION_DAYS (not counted in `deleted`, which is the ledger's). */
  audit_deleted: number;
}

/**
 * Deletes what can never be active again: ledger entries, revoked-list rows and revocation events,
 * and provider records whose expiry is past, feed events older than any token they could name, expired
 * throttle counts and one-time marks, and audit events older than AUDIT_RETENTION_DAYS. Never an entry of an unexpired token. Runs as its own
 * job (CLI or admin API), never inside a token request, in batches with a pause between them.
 */
export async function prune({ config, stores, audit, replayMarks }: PruneDependencies, options: PruneOptions = {}): Promise<PruneResult> {
  const before = new Date(Date.now() - (options.olderThanSeconds ?? 0) * 1000);
  const batchSize = options.batchSize ?? 1000;
  const limit = options.limit ?? Infinity;
  // A feed event matters while a token issued before it can still be alive.
  const feedBefore = new Date(before.getTime() - Math.max(config.accessTokenTtl, config.refreshTokenTtl) * 1000);
  const auditBefore = new Date(Date.now() - config.auditRetentionDays * 24 * 3600 * 1000);
  const result: PruneResult = {
    deleted: 0,
    token_entries: 0,
    revoked_tokens: 0,
    provider_records: 0,
    revocation_feed: 0,
    throttle_counters: 0,
    replay_marks: 0,
    batches: 0,
    audit_deleted: 0,
  };
  const steps: [keyof PruneResult, (size: number) => Promise<number>][] = [
    ['token_entries', (size) => stores.entries.pruneBatch(before, size)],
    // Revocation events go with the last batch of the revoked-token list (they count as its rows).
    [
      'revoked_tokens',
      async (size) => {
        const listed = await stores.revokedTokens.pruneBatch(before, size);
        return listed < size ? listed + (await stores.revocationEvents.prune(before)) : listed;
      },
    ],
    ['provider_records', (size) => stores.providerRecords.pruneBatch(before, size)],
    ['revocation_feed', (size) => stores.revocationFeed.pruneBefore(feedBefore, size)],
    // A count past its expiry counts nothing; older than `before`, it goes.
    ['throttle_counters', (size) => stores.throttleCounters.pruneBatch(before, size)],
    ['replay_marks', (size) => replayMarks.pruneBatch(before, size)],
  ];
  steps.push(['audit_deleted', (size) => audit.pruneBatch(auditBefore, size)]);
  const total = () => result.deleted + result.audit_deleted;
  for (const [key, step] of steps) {
    while (total() < limit) {
      const count = await step(Math.min(batchSize, limit - total()));
      if (count === 0) break;
      result[key] += count;
      if (key !== 'audit_deleted') result.deleted += count;
      result.batches += 1;
      // Yield between batches so concurrent requests get the database.
      await sleep(5);
    }
  }
  return result;
}
