import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Config } from '../config/index.js';
import { seal, sha256, timeOrderedUuid, unseal, type SealingKey } from '../lib/crypto.js';
import type { ClientStore, StoredClient } from '../storage/clients.js';
import type { EntryType, LedgerRow } from '../storage/ledger.js';
import { entryBinding, type TokenBinding } from './binding.js';
import type { ActiveToken, LedgerManager } from './ledger-manager.js';
import type { SealedRecords } from './sealed-records.js';
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
  /** Every token read, single use and revocation goes through the ledger manager. */
  ledger: LedgerManager;
  /** Sessions, grants, interactions and oidc-provider's other records. */
  records: SealedRecords;
  clients: ClientStore;
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
 * A row's payload, decrypted once: oidc-provider looks one token up as several models at once, and the
 * ledger manager hands them the same row (see its per-turn reads).
 */
class Payloads {
  private readonly plaintexts = new WeakMap<LedgerRow, string | undefined>();

  constructor(private readonly keys: ReadonlyMap<string, Buffer>) {}

  plaintext(row: LedgerRow & { payload: string }): string | undefined {
    if (!this.plaintexts.has(row)) this.plaintexts.set(row, unseal(row.payload, this.keys, `token:${row.lookupHash}`));
    return this.plaintexts.get(row);
  }
}

/**
 * Tokens. Reference tokens: one ledger entry each, the payload sealed and bound to its row by the
 * lookup hash. Stateless refresh tokens: no entry; the value is the sealed payload. Whether either is
 * active, and what a second use means, the ledger manager decides.
 */
class TokenAdapter implements Adapter {
  private readonly type: EntryType;

  constructor(
    private readonly model: string,
    private readonly deps: AdapterDependencies,
    private readonly payloads: Payloads,
  ) {
    this.type = LEDGER_TYPES[model]!;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const lookupHash = sha256(id);
    await this.deps.ledger.upsert({
      id: timeOrderedUuid(),
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
      ...entryBinding(payload as TokenBinding),
      expiresAt: payload.exp ? new Date(payload.exp * 1000) : expiry(expiresIn)!,
    });
  }

  /** The payload of an active entry (or a used one, marked consumed), when it is this model's. */
  private open(found: ActiveToken | undefined): AdapterPayload | undefined {
    if (!found?.entry?.payload) return undefined;
    const plain = this.payloads.plaintext(found.entry as LedgerRow & { payload: string });
    if (plain === undefined) return undefined;
    const payload = JSON.parse(plain) as AdapterPayload;
    if (payload.kind !== this.model) return undefined;
    if (found.usedAt) payload.consumed = seconds(found.usedAt);
    return payload;
  }

  private async findStateless(value: string): Promise<AdapterPayload | undefined> {
    const payload = this.deps.statelessRefreshTokens.open(value);
    if (!payload?.jti || !isStatelessJti(payload.jti)) return undefined;
    const claims = { iat: payload.iat!, subject: payload.accountId, clientId: payload.clientId!, grantId: payload.grantId };
    const found = await this.deps.ledger.findActive({ id: payload.jti, type: this.type, claims, includeUsed: true });
    if (!found) return undefined;
    if (found.usedAt) payload.consumed = seconds(found.usedAt);
    return payload;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (looksLikeReference(id)) return this.open(await this.deps.ledger.findActive({ id, type: this.type, format: 'reference', includeUsed: true }));
    // Anything else reaching the refresh-token model may be a stateless refresh token.
    return this.type === 'refresh_token' ? this.findStateless(id) : undefined;
  }

  async findByUserCode(userCode: string) {
    return this.open(await this.deps.ledger.findActive({ userCode, type: this.type, includeUsed: true }));
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  /** Single use: only one of several racing redemptions wins; the others get invalid_grant. */
  async consume(id: string): Promise<void> {
    if (await this.deps.ledger.redeem(id, this.type)) return;
    throw new errors.InvalidGrant(`${this.type.replace('_', ' ')} already used`);
  }

  async destroy(id: string): Promise<void> {
    await this.deps.ledger.revokeToken(id, this.type);
  }

  /**
   * oidc-provider ends a grant by calling this on every token model, AccessToken always among them:
   * that call also records the grant event that stateless tokens are checked against.
   */
  async revokeByGrantId(grantId: string): Promise<void> {
    await this.deps.ledger.revokeScope({ grantId }, this.model === 'AccessToken' ? undefined : [this.type]);
  }
}

/** Sessions, grants, interactions and the like: sealed JSON keyed by a hash of their id. */
class RecordAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly records: SealedRecords,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    await this.records.save(this.model, id, payload, expiresIn);
  }

  async find(id: string) {
    return this.records.find(this.model, id);
  }

  async findByUid(uid: string) {
    return this.records.findByUid(this.model, uid);
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(id: string): Promise<void> {
    await this.records.consume(this.model, id);
  }

  async destroy(id: string): Promise<void> {
    await this.records.destroy(this.model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.records.revokeByGrantId(this.model, grantId);
  }
}

/** Clients come from the clients table; the stored secret hash (HMAC, or a legacy argon2 hash) stands in `client_secret`. */
class ClientAdapter implements Adapter {
  /**
   * Each stored copy's answer, made once: while the client store keeps its copy, oidc-provider meets
   * the same object, and the direct answers find the Client built from it (oidc/internals findClient).
   */
  private readonly answers = new WeakMap<StoredClient, AdapterPayload>();

  constructor(private readonly deps: AdapterDependencies) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.deps.clients.find(id);
    if (!client) return undefined;
    let answer = this.answers.get(client);
    if (!answer) {
      answer = (client.secretHash ? { ...client.metadata, client_secret: client.secretHash } : client.metadata) as AdapterPayload;
      this.answers.set(client, answer);
    }
    return answer;
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
  const payloads = new Payloads(deps.payloadKeys);
  return function adapterFor(model: string): Adapter {
    if (model === 'Client') return new ClientAdapter(deps);
    if (model in LEDGER_TYPES) return new TokenAdapter(model, deps, payloads);
    return new RecordAdapter(model, deps.records);
  };
}
