import { randomUUID } from 'node:crypto';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Config } from '../config/index.js';
import { seal, sha256, unseal, type SealingKey } from '../lib/crypto.js';
import type { ClientStore } from '../storage/clients.js';
import type { Sql } from '../storage/sql.js';
import { LIVE_STATUSES, type EntryType, type LedgerRow, type LedgerStore } from '../storage/ledger.js';
import type { Revocation } from './revocation.js';
import type { StatelessRefreshTokens } from './stateless-refresh-tokens.js';
import { isStatelessJti, looksLikeReference } from './token-ids.js';

/** oidc-provider models that are tokens: they live in the ledger, keyed by a hash of their value. */
const LEDGER_TYPES: Record<string, EntryType> = {
  AccessToken: 'access_token',
  ClientCredentials: 'access_token',
  RefreshToken: 'refresh_token',
  AuthorizationCode: 'authorization_code',
  DeviceCode: 'device_code',
};

export interface AdapterDependencies {
  config: Config;
  sql: Sql;
  ledger: LedgerStore;
  clients: ClientStore;
  revocation: Revocation;
  statelessRefreshTokens: StatelessRefreshTokens;
  payloadKey: SealingKey;
  payloadKeys: ReadonlyMap<string, Buffer>;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
const expiry = (expiresIn: number | undefined) => (expiresIn ? new Date(Date.now() + expiresIn * 1000) : null);

function joinAudience(aud: unknown): string | null {
  if (Array.isArray(aud)) return aud.join(' ');
  return typeof aud === 'string' ? aud : null;
}

/**
 * Without a `token_type_hint`, oidc-provider looks a token up as an access token, a client-credentials
 * token and a refresh token at once: three reads of one ledger row and two decryptions of its payload.
 * Lookups started in one turn of the event loop share one read, and a row's payload is decrypted once.
 * Nothing outlives the turn, so a token revoked in an earlier turn is never read stale.
 */
class TokenLookups {
  private readonly pending = new Map<string, Promise<LedgerRow | null>>();
  private readonly plaintexts = new WeakMap<LedgerRow, string | undefined>();

  constructor(private readonly deps: AdapterDependencies) {}

  /** The row of a token value (hashed once per turn, however many models ask). */
  find(value: string): Promise<LedgerRow | null> {
    let row = this.pending.get(value);
    if (!row) {
      if (this.pending.size === 0) setImmediate(() => this.pending.clear());
      row = this.deps.ledger.findByLookupHash(sha256(value));
      this.pending.set(value, row);
    }
    return row;
  }

  plaintext(row: LedgerRow & { payload: string }): string | undefined {
    if (!this.plaintexts.has(row)) this.plaintexts.set(row, unseal(row.payload, this.deps.payloadKeys, `token:${row.lookupHash}`));
    return this.plaintexts.get(row);
  }
}

/**
 * Whether a refresh token used at `consumedAt` may be used again now. A leeway of 0 means never, even
 * within the same millisecond (a racing second use must fail).
 */
export function withinReuseLeeway(consumedAt: Date, leewaySeconds: number, now = Date.now()): boolean {
  return leewaySeconds > 0 && now - consumedAt.getTime() <= leewaySeconds * 1000;
}

/**
 * Tokens. Reference tokens: one ledger entry each, the payload sealed and bound to its row by the
 * lookup hash. Stateless refresh tokens: no entry; the value is the sealed payload, and its state
 * (used, revoked) is in the revoked-token list and the revocation events.
 */
class TokenAdapter implements Adapter {
  private readonly type: EntryType;

  constructor(
    private readonly model: string,
    private readonly deps: AdapterDependencies,
    private readonly lookups: TokenLookups,
  ) {
    this.type = LEDGER_TYPES[model]!;
  }

  /** Within the reuse leeway, a just-rotated refresh token still counts as unused. */
  private withinLeeway(consumedAt: Date): boolean {
    return this.type === 'refresh_token' && withinReuseLeeway(consumedAt, this.deps.config.refreshTokenReuseLeeway);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const lookupHash = sha256(id);
    await this.deps.ledger.upsert({
      id: randomUUID(),
      lookupHash,
      type: this.type,
      format: 'reference',
      clientId: payload.clientId!,
      createdAt: payload.iat ? new Date(payload.iat * 1000) : new Date(),
      subject: payload.accountId ?? (this.model === 'ClientCredentials' ? (payload.clientId ?? null) : null),
      grantId: payload.grantId ?? null,
      sessionUid: payload.sessionUid ?? null,
      scope: payload.scope ?? null,
      audience: joinAudience(payload.aud),
      payload: seal(JSON.stringify(payload), this.deps.payloadKey, `token:${lookupHash}`),
      userCodeHash: payload.userCode ? sha256(payload.userCode) : null,
      expiresAt: payload.exp ? new Date(payload.exp * 1000) : expiry(expiresIn)!,
    });
  }

  private open(row: LedgerRow | null): AdapterPayload | undefined {
    if (!row?.payload || row.type !== this.type || row.expiresAt.getTime() <= Date.now() || !LIVE_STATUSES.includes(row.status as never)) return undefined;
    const plain = this.lookups.plaintext(row as LedgerRow & { payload: string });
    if (plain === undefined) return undefined;
    const payload = JSON.parse(plain) as AdapterPayload;
    if (payload.kind !== this.model) return undefined;
    if (row.status === 'redeemed' && !this.withinLeeway(row.redeemedAt ?? new Date(0))) payload.consumed = seconds(row.redeemedAt ?? new Date());
    return payload;
  }

  private async findStateless(value: string): Promise<AdapterPayload | undefined> {
    const payload = this.deps.statelessRefreshTokens.open(value);
    if (!payload?.jti || !isStatelessJti(payload.jti)) return undefined;
    const status = await this.deps.revocation.statelessStatus(sha256(payload.jti), {
      jti: payload.jti,
      iat: payload.iat!,
      subject: payload.accountId,
      clientId: payload.clientId!,
      grantId: payload.grantId,
    });
    if (status.state === 'revoked') return undefined;
    if (status.state === 'consumed' && !this.withinLeeway(status.at)) payload.consumed = seconds(status.at);
    return payload;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (looksLikeReference(id)) return this.open(await this.lookups.find(id));
    // Anything else reaching the refresh-token model may be a stateless refresh token.
    return this.type === 'refresh_token' ? this.findStateless(id) : undefined;
  }

  async findByUserCode(userCode: string) {
    return this.open(await this.deps.ledger.findByUserCodeHash(sha256(userCode), this.type));
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  /** Single use: only one of several racing redemptions wins; the others get invalid_grant. */
  async consume(id: string): Promise<void> {
    const lookupHash = sha256(id);
    if (isStatelessJti(id)) {
      if (await this.deps.revocation.consumeStateless(lookupHash)) return;
      const consumedAt = await this.deps.revocation.consumedAt(lookupHash);
      if (consumedAt && this.withinLeeway(consumedAt)) return;
    } else {
      if (await this.deps.ledger.redeem(lookupHash)) return;
      const row = await this.deps.ledger.findByLookupHash(lookupHash);
      if (row?.status === 'redeemed' && row.redeemedAt && this.withinLeeway(row.redeemedAt)) return;
    }
    throw new errors.InvalidGrant(`${this.type.replace('_', ' ')} already used`);
  }

  async destroy(id: string): Promise<void> {
    await this.deps.revocation.revokeToken(sha256(id), this.type, isStatelessJti(id));
  }

  /**
   * oidc-provider ends a grant by calling this on every token model, AccessToken always among them:
   * that call also records the grant event that stateless tokens are checked against.
   */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.deps.revocation.revokeScope({ grantId }, this.model === 'AccessToken' ? undefined : [this.type]);
  }
}

const RECORD_COLUMNS = `"id", "payload", "expires_at" AS "expiresAt", "consumed_at" AS "consumedAt"`;

/** Sessions, grants, interactions and the like: sealed JSON keyed by a hash of their id. */
class RecordAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly deps: AdapterDependencies,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const hashed = sha256(id);
    await this.deps.sql.run(
      `INSERT INTO "provider_records" ("model", "id", "payload", "grant_id", "uid", "expires_at") VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT ("model", "id") DO UPDATE SET "payload" = excluded."payload", "grant_id" = excluded."grant_id", "uid" = excluded."uid", "expires_at" = excluded."expires_at"`,
      [this.model, hashed, seal(JSON.stringify(payload), this.deps.payloadKey, `${this.model}:${hashed}`), payload.grantId ?? null, payload.uid ?? null, expiry(expiresIn)],
    );
  }

  private open(row: { id: string; payload: string; expiresAt: Date | null; consumedAt: Date | null } | undefined) {
    if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
    const plain = unseal(row.payload, this.deps.payloadKeys, `${this.model}:${row.id}`);
    if (plain === undefined) return undefined;
    const payload = JSON.parse(plain) as AdapterPayload;
    if (row.consumedAt) payload.consumed = seconds(row.consumedAt);
    return payload;
  }

  async find(id: string) {
    return this.open(await this.deps.sql.get(`SELECT ${RECORD_COLUMNS} FROM "provider_records" WHERE "model" = ? AND "id" = ?`, [this.model, sha256(id)]));
  }

  async findByUid(uid: string) {
    return this.open(await this.deps.sql.get(`SELECT ${RECORD_COLUMNS} FROM "provider_records" WHERE "model" = ? AND "uid" = ? LIMIT 1`, [this.model, uid]));
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(id: string): Promise<void> {
    await this.deps.sql.run(`UPDATE "provider_records" SET "consumed_at" = ? WHERE "model" = ? AND "id" = ?`, [new Date(), this.model, sha256(id)]);
  }

  async destroy(id: string): Promise<void> {
    await this.deps.sql.run(`DELETE FROM "provider_records" WHERE "model" = ? AND "id" = ?`, [this.model, sha256(id)]);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.deps.sql.run(`DELETE FROM "provider_records" WHERE "model" = ? AND "grant_id" = ?`, [this.model, grantId]);
  }
}

/** Clients come from the clients table; the stored argon2 hash stands in `client_secret`. */
class ClientAdapter implements Adapter {
  constructor(private readonly deps: AdapterDependencies) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.deps.clients.find(id);
    if (!client) return undefined;
    const metadata = client.secretHash ? { ...client.metadata, client_secret: client.secretHash } : client.metadata;
    return metadata as AdapterPayload;
  }

  async upsert(): Promise<void> {
    throw new Error('clients are written through the admin API or the CLI');
  }

  async destroy(id: string): Promise<void> {
    await this.deps.clients.delete(id);
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}

/** The adapter factory oidc-provider calls once per model name. */
export function createAdapterFactory(deps: AdapterDependencies) {
  const lookups = new TokenLookups(deps);
  return function adapterFor(model: string): Adapter {
    if (model === 'Client') return new ClientAdapter(deps);
    if (model in LEDGER_TYPES) return new TokenAdapter(model, deps, lookups);
    return new RecordAdapter(model, deps);
  };
}
