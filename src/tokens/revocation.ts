import type { Config, TokenMode } from '../config/index.js';
import { ENTRY_FORMATS, toLedgerEntry, type EntryFormat, type EntryType, type LedgerEntry, type LedgerStore, type RevocationScope } from '../storage/ledger.js';
import { eventKey, type RevocationStore } from '../storage/revocations.js';
import type { RevocationMessage } from './revocation-feed.js';

export interface TokenClaims {
  jti: string;
  iat: number;
  subject?: string | undefined;
  clientId: string;
  grantId?: string | undefined;
}

export type StatelessStatus = { state: 'active' } | { state: 'consumed'; at: Date } | { state: 'revoked' };

/**
 * Revocation in every mode: ledger entries change status; stateless tokens, which have no entry, are
 * matched against the revoked-token list and the revocation events.
 */
export function createRevocation({
  ledger,
  revocations,
  config,
  publish,
  counted = () => undefined,
  settleMs = 1000,
}: {
  ledger: LedgerStore;
  revocations: RevocationStore;
  config: Config;
  /** Announces a revocation to validators (the feed and Redis); never throws into the caller. */
  publish: (message: RevocationMessage) => Promise<void>;
  /**
   * Tokens this process revoked, by mode (for metrics): ledger entries by their format, stateless
   * tokens revoked one by one. A revocation event's stateless tokens cannot be counted.
   */
  counted?: (mode: TokenMode, count: number) => void;
  /** How long after a bulk revocation its second pass runs (entries written late). */
  settleMs?: number;
}) {
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
        for (const type of types) count += countEntries(await ledger.deactivate(scope, at, type));
        return count;
      }
      await revocations.recordEvent(kind, value, at, new Date(at.getTime() + longestTtlMs()));
      const count = countEntries(await ledger.deactivate(scope, at));
      const message: RevocationMessage = {
        type: 'scope',
        ...(scope.subject !== undefined ? { subject: scope.subject } : {}),
        ...(scope.clientId !== undefined ? { client_id: scope.clientId } : {}),
        ...(scope.grantId !== undefined ? { grant_id: scope.grantId } : {}),
        revoked_at: at.toISOString(),
      };
      await publish(message);
      // A token issued just before `at` whose entry was still being written (another connection, a
      // queued commit) escaped that update: a second pass once such writes have landed catches it,
      // and announces the revocation again if it changed anything, so that caches drop those too.
      setTimeout(() => {
        ledger
          .deactivate(scope, at)
          .then((late) => (countEntries(late) > 0 ? publish(message) : undefined))
          .catch(() => undefined); // storage closed meanwhile (shutdown)
      }, settleMs).unref();
      return count;
    },

    /** One token by the hash of its jti: its ledger entry, or (stateless) the revoked-token list. */
    async revokeToken(lookupHash: string, type: EntryType, stateless: boolean): Promise<void> {
      if (stateless) {
        await revocations.add(lookupHash, type, 'revoked', new Date(Date.now() + ttlMs(type)));
        counted('stateless', 1);
      } else {
        const format = await ledger.revokeByLookupHash(lookupHash);
        if (format) counted(format, 1);
      }
      await publish({ type: 'token', jti_hash: lookupHash, revoked_at: new Date().toISOString() });
    },

    /** One ledger entry by its id (the admin API); undefined when there is no such entry. */
    async revokeEntry(id: string): Promise<LedgerEntry | undefined> {
      const revoked = await ledger.revokeById(id);
      if (!revoked) return undefined;
      const { row } = revoked;
      if (revoked.revoked) counted(row.format as EntryFormat, 1);
      await publish({ type: 'token', jti_hash: row.lookupHash, revoked_at: new Date().toISOString() });
      return toLedgerEntry(row);
    },

    /** Marks a stateless refresh token used; false when it already was (a racing or replayed use). */
    consumeStateless(lookupHash: string): Promise<boolean> {
      return revocations.add(lookupHash, 'refresh_token', 'consumed', new Date(Date.now() + ttlMs('refresh_token')));
    },

    /** When a stateless refresh token was used, if it was (and not revoked since). */
    async consumedAt(lookupHash: string): Promise<Date | undefined> {
      const listed = await revocations.find(lookupHash);
      return listed?.reason === 'consumed' ? listed.revokedAt : undefined;
    },

    async statelessStatus(lookupHash: string, claims: TokenClaims): Promise<StatelessStatus> {
      const [listed, events] = await Promise.all([revocations.find(lookupHash), revocations.findEvents(claims)]);
      if (listed?.reason === 'revoked') return { state: 'revoked' };
      // "Issued at or before the event, to the second."
      if (events.some((e) => claims.iat <= Math.floor(e.revokedAt.getTime() / 1000))) return { state: 'revoked' };
      if (listed?.reason === 'consumed') return { state: 'consumed', at: listed.revokedAt };
      return { state: 'active' };
    },
  };
}

export type Revocation = ReturnType<typeof createRevocation>;
