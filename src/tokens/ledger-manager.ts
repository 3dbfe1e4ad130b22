import type { Config } from '../config/index.js';
import { sha256 } from '../lib/crypto.js';
import type { EntryFormat, EntryType, LedgerRow } from '../storage/ledger.js';
import type { CachedLedgerStore } from '../storage/ledger-cache.js';
import type { RevocationEventStore } from '../storage/revocation-events.js';
import type { RevokedTokenStore } from '../storage/revoked-tokens.js';
import type { Revocation } from './revocation/index.js';
import type { SealedRecords } from './sealed-records.js';
import { isStatelessJti } from './token-ids.js';

/** What revocation events can name a stateless token by (it has no ledger entry): from its claims or payload. */
export interface StatelessClaims {
  /** Issued at, seconds. */
  iat: number;
  subject?: string | undefined;
  clientId: string;
  grantId?: string | undefined;
}

/** A token oidc-provider's models found (through this manager), as far as being active depends on it. */
export interface FoundToken {
  clientId: string;
  accountId?: string | undefined;
  grantId?: string | undefined;
  /** Expiry, seconds. */
  exp?: number | undefined;
  /** Set when the token was used (outside its reuse leeway). */
  consumed?: unknown;
}

/** How findActive is asked about a token. */
export type ActiveQuery =
  | {
      /** The token's identifier: a reference token's value or a JWT's jti (a stateless jti is told by its prefix). */
      id: string;
      type: EntryType;
      /** The entry must be of this format (a JWT's is `jwt`; a value presented as a reference token must be `reference`). */
      format?: EntryFormat;
      /** A stateless token's claims (required for one: revocation events match them). */
      claims?: StatelessClaims;
      /** Also answer a single-use token used beyond its reuse leeway, with `usedAt` (oidc-provider detects reuse by it). */
      includeUsed?: boolean;
    }
  | { userCode: string; type: EntryType; includeUsed?: boolean }
  | {
      /** A token already loaded by oidc-provider's models, judged in full: its grant must still be in place, for its client and account. */
      found: FoundToken;
    };

export interface ActiveToken {
  /** The ledger entry; none for stateless tokens and found ones. */
  entry?: LedgerRow;
  /** With `includeUsed`: when a single-use token was used, if that use counts (beyond the reuse leeway). */
  usedAt?: Date;
}

const ACTIVE: ActiveToken = Object.freeze({});
const nowSeconds = () => Math.floor(Date.now() / 1000);

type FoundGrant = { clientId?: unknown; accountId?: unknown; exp?: unknown } | undefined;

/**
 * A found token counts while unused and unexpired (oidc-provider's isValid) and its grant is in place,
 * for its client and account. Exported for a provider built around another store of grants (the
 * direct-answer tests' in-process oidc-provider); the manager judges with its own.
 */
export async function judgeFoundToken(token: FoundToken, findGrant: (id: string) => Promise<FoundGrant>): Promise<ActiveToken | undefined> {
  if (token.consumed || (typeof token.exp === 'number' && token.exp <= nowSeconds())) return undefined;
  if (!token.grantId) return ACTIVE;
  const grant = await findGrant(token.grantId);
  if (!grant || (typeof grant.exp === 'number' && grant.exp <= nowSeconds())) return undefined;
  return grant.clientId === token.clientId && grant.accountId === token.accountId ? ACTIVE : undefined;
}

/**
 * Whether a refresh token used at `usedAt` may be used again now. A leeway of 0 means never, even
 * within the same millisecond (a racing second use must fail).
 */
export function withinReuseLeeway(usedAt: Date, leewaySeconds: number, now = Date.now()): boolean {
  return leewaySeconds > 0 && now - usedAt.getTime() <= leewaySeconds * 1000;
}

export interface LedgerManagerDependencies {
  config: Config;
  entries: CachedLedgerStore;
  revokedTokens: RevokedTokenStore;
  revocationEvents: RevocationEventStore;
  /** oidc-provider's records: the grant a token names. */
  records: Pick<SealedRecords, 'find'>;
  revocation: Revocation;
}

/**
 * The ledger's rules, asked by every reader and writer of tokens (oidc-provider's adapter, the JWT
 * lookup, the direct introspection, admin authentication): what counts as active, single use, and
 * revocation. Stores stay dumb; this decides.
 */
export function createLedgerManager({ config, entries, revokedTokens, revocationEvents, records, revocation }: LedgerManagerDependencies) {
  /** Only refresh tokens have a reuse leeway; codes are single use, full stop. */
  const withinLeeway = (type: EntryType, usedAt: Date) => type === 'refresh_token' && withinReuseLeeway(usedAt, config.refreshTokenReuseLeeway);

  // Without a token_type_hint, oidc-provider looks a token up as an access token, a client-credentials
  // token and a refresh token at once: three reads of one row. Reads started in one turn of the event
  // loop share one; nothing outlives the turn, so a token revoked in an earlier turn is never read stale.
  const pending = new Map<string, Promise<LedgerRow | null>>();
  function readEntry(id: string): Promise<LedgerRow | null> {
    let row = pending.get(id);
    if (!row) {
      if (pending.size === 0) setImmediate(() => pending.clear());
      row = entries.findByLookupHash(sha256(id));
      pending.set(id, row);
    }
    return row;
  }

  /** An entry counts when it is of the type (and format) asked for, unexpired, and valid, or used within the leeway. */
  function judgeEntry(row: LedgerRow | null, type: EntryType, format: EntryFormat | undefined, includeUsed: boolean | undefined): ActiveToken | undefined {
    if (!row || row.type !== type || (format && row.format !== format) || row.expiresAt.getTime() <= Date.now()) return undefined;
    if (row.status === 'valid') return { entry: row };
    if (row.status !== 'redeemed') return undefined; // revoked, or made inactive by a bulk revocation
    if (withinLeeway(type, row.redeemedAt ?? new Date(0))) return { entry: row };
    return includeUsed ? { entry: row, usedAt: row.redeemedAt ?? new Date() } : undefined;
  }

  /** A stateless token counts unless listed as revoked or matched by a revocation event ("issued at or before it", to the second). */
  async function judgeStateless(id: string, type: EntryType, claims: StatelessClaims, includeUsed: boolean | undefined): Promise<ActiveToken | undefined> {
    // An access token's listing and events change only by a revocation, which every process publishes: a
    // cache may answer them (storage/revocation-cache.ts). A refresh token's use (single use) is not published.
    const cacheable = { cacheable: type === 'access_token' };
    const [listed, events] = await Promise.all([revokedTokens.find(sha256(id), cacheable), revocationEvents.findMatching(claims, cacheable)]);
    if (listed?.reason === 'revoked') return undefined;
    if (events.some((event) => claims.iat <= Math.floor(event.revokedAt.getTime() / 1000))) return undefined;
    if (listed?.reason !== 'consumed' || withinLeeway(type, listed.revokedAt)) return ACTIVE;
    return includeUsed ? { usedAt: listed.revokedAt } : undefined;
  }

  const judgeFound = (token: FoundToken) => judgeFoundToken(token, (id) => records.find('Grant', id));

  return {
    /** The one definition of an active token: undefined when it is not. */
    async findActive(query: ActiveQuery): Promise<ActiveToken | undefined> {
      if ('found' in query) return judgeFound(query.found);
      if ('userCode' in query)
        return judgeEntry(await entries.findByUserCodeHash(sha256(query.userCode), query.type), query.type, 'reference', query.includeUsed);
      if (!isStatelessJti(query.id)) return judgeEntry(await readEntry(query.id), query.type, query.format, query.includeUsed);
      return query.claims ? judgeStateless(query.id, query.type, query.claims, query.includeUsed) : undefined;
    },

    /**
     * Single use: marks the token used; true when this use counts (the first, or a repeat within the
     * reuse leeway), false when another use got there first.
     */
    async redeem(id: string, type: EntryType): Promise<boolean> {
      const lookupHash = sha256(id);
      if (isStatelessJti(id)) {
        if (await revokedTokens.add(lookupHash, 'refresh_token', 'consumed', new Date(Date.now() + config.refreshTokenTtl * 1000))) return true;
        const listed = await revokedTokens.find(lookupHash);
        return listed?.reason === 'consumed' && withinLeeway(type, listed.revokedAt);
      }
      if (await entries.redeem(lookupHash)) return true;
      const row = await entries.findByLookupHash(lookupHash);
      return row?.status === 'redeemed' && row.redeemedAt !== null && withinLeeway(type, row.redeemedAt);
    },

    revokeToken: revocation.revokeToken,
    revokeScope: revocation.revokeScope,
    revokeEntry: revocation.revokeEntry,
    runDuePasses: revocation.runDuePasses,

    /** Issuance: a new entry (a jwt-mode access token), or one saved again (oidc-provider's upsert). */
    create: entries.create,
    upsert: entries.upsert,
    /** The admin API's reads. */
    findById: entries.findById,
    list: entries.list,
  };
}

export type LedgerManager = ReturnType<typeof createLedgerManager>;
