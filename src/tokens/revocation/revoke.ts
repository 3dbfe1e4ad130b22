import type { Config, TokenMode } from '../../config/index.js';
import { sha256 } from '../../lib/crypto.js';
import { ENTRY_FORMATS, toLedgerEntry, type EntryFormat, type EntryType, type LedgerEntry, type RevocationScope } from '../../storage/ledger.js';
import type { CachedLedgerStore } from '../../storage/ledger-cache.js';
import { eventKey, type RevocationEventStore } from '../../storage/revocation-events.js';
import type { RevocationPassRow, RevocationPassStore } from '../../storage/revocation-passes.js';
import type { RevokedTokenStore } from '../../storage/revoked-tokens.js';
import type { RevocationMessage } from '../../protocol/revocations.js';
import { isStatelessJti } from '../token-ids.js';

export interface RevocationDependencies {
  config: Config;
  entries: CachedLedgerStore;
  revokedTokens: RevokedTokenStore;
  revocationEvents: RevocationEventStore;
  revocationPasses: RevocationPassStore;
  /** Announces a revocation to validators (the feed and Redis); never throws into the caller. */
  publish: (message: RevocationMessage) => Promise<void>;
  /**
   * Tokens this process revoked, by mode (for metrics): ledger entries by their format, stateless
   * tokens revoked one by one. A revocation event's stateless tokens cannot be counted.
   */
  counted?: (mode: TokenMode, count: number) => void;
  /** How long after a bulk revocation its second pass is due (entries written late). */
  settleMs?: number;
}

/** How long a process that took a second pass has to run it before another may take it over. */
const PASS_CLAIM_MS = 60_000;
/** Second passes run per poll at most. */
const PASSES_PER_POLL = 20;

/** What a bulk revocation announces: its scope and its time. */
function scopeMessage(scope: RevocationScope, at: Date): RevocationMessage {
  return {
    type: 'scope',
    ...(scope.subject !== undefined ? { subject: scope.subject } : {}),
    ...(scope.clientId !== undefined ? { client_id: scope.clientId } : {}),
    ...(scope.grantId !== undefined ? { grant_id: scope.grantId } : {}),
    revoked_at: at.toISOString(),
  };
}

const scopeOfPass = (pass: RevocationPassRow): RevocationScope => ({
  ...(pass.subject !== null ? { subject: pass.subject } : {}),
  ...(pass.clientId !== null ? { clientId: pass.clientId } : {}),
  ...(pass.grantId !== null ? { grantId: pass.grantId } : {}),
});

/**
 * Revocation in every mode: ledger entries change status; stateless tokens, which have no entry, are
 * listed in the revoked-token list or matched by a revocation event. Part of the ledger manager.
 */
export function createRevocation(deps: RevocationDependencies) {
  const { config, entries, revokedTokens, revocationEvents, revocationPasses, publish, counted = () => undefined, settleMs = 1000 } = deps;
  const countEntries = (counts: Record<EntryFormat, number>) => {
    for (const format of ENTRY_FORMATS) if (counts[format] > 0) counted(format, counts[format]);
    return counts.reference + counts.jwt;
  };

  const longestTtlMs = () => Math.max(config.accessTokenTtl, config.refreshTokenTtl) * 1000;
  const ttlMs = (type: EntryType) => (type === 'refresh_token' ? config.refreshTokenTtl : config.accessTokenTtl) * 1000;

  return {
    /**
     * Every token of a subject, client or grant (or of all of those given) issued at or before now becomes
     * inactive: entries at once (by their creation time), stateless tokens through an event (by their
     * `iat`, in whole seconds). Returns the entries changed.
     */
    async revokeScope(scope: RevocationScope, types?: EntryType[]): Promise<number> {
      const at = new Date();
      const { kind, value } = eventKey(scope);
      if (!kind) throw new Error('a bulk revocation needs a subject, a client or a grant');
      if (types) {
        // Part of a revocation already recorded and announced (oidc-provider ends a grant model by model).
        let count = 0;
        for (const type of types) count += countEntries(await entries.deactivate(scope, at, type));
        return count;
      }
      await revocationEvents.record(kind, value, at, new Date(at.getTime() + longestTtlMs()));
      // A token issued just before `at` whose entry was still being written (another connection, a
      // queued commit) escapes the update below: a second pass once such writes have landed catches
      // it. Recorded before the first pass, so that it runs even if this process stops right after.
      await revocationPasses.record(scope, at, new Date(at.getTime() + settleMs));
      const count = countEntries(await entries.deactivate(scope, at));
      await publish(scopeMessage(scope, at));
      return count;
    },

    /**
     * Runs the second passes that are due, in whichever process polls (each is taken by one): each
     * deactivates what its revocation's first pass missed, and announces the revocation again if
     * it changed anything, so that caches drop those entries too. Returns how many ran.
     */
    async runDuePasses(): Promise<number> {
      const now = new Date();
      let ran = 0;
      for (const pass of await revocationPasses.listDue(now, PASSES_PER_POLL)) {
        if (!(await revocationPasses.claim(pass.id, now, new Date(now.getTime() + PASS_CLAIM_MS)))) continue;
        const scope = scopeOfPass(pass);
        if (countEntries(await entries.deactivate(scope, pass.revokedAt)) > 0) await publish(scopeMessage(scope, pass.revokedAt));
        await revocationPasses.complete(pass.id);
        ran++;
      }
      return ran;
    },

    /** One token by its id (a reference token's value, a JWT's jti): its ledger entry, or (stateless) the revoked-token list. */
    async revokeToken(id: string, type: EntryType): Promise<void> {
      const lookupHash = sha256(id);
      if (isStatelessJti(id)) {
        await revokedTokens.add(lookupHash, type, 'revoked', new Date(Date.now() + ttlMs(type)));
        counted('stateless', 1);
      } else {
        const format = await entries.revokeByLookupHash(lookupHash);
        if (format) counted(format, 1);
      }
      await publish({ type: 'token', jti_hash: lookupHash, revoked_at: new Date().toISOString() });
    },

    /** One ledger entry by its id (the admin API); undefined when there is no such entry. */
    async revokeEntry(id: string): Promise<LedgerEntry | undefined> {
      const revoked = await entries.revokeById(id);
      if (!revoked) return undefined;
      const { row } = revoked;
      if (revoked.revoked) counted(row.format, 1);
      await publish({ type: 'token', jti_hash: row.lookupHash, revoked_at: new Date().toISOString() });
      return toLedgerEntry(row);
    },
  };
}

export type Revocation = ReturnType<typeof createRevocation>;
