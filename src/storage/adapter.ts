import { randomUUID } from 'node:crypto';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { seal, sha256, unseal, type SealingKey } from '../lib/crypto.js';
import type { Db } from './database.js';
import { LIVE_STATUSES, type EntryType } from './ledger.js';
import type { ClientStore } from './clients.js';

/** oidc-provider models that are tokens: they live in the ledger, keyed by a hash of their value. */
const LEDGER_TYPES: Record<string, EntryType> = {
  AccessToken: 'access_token',
  ClientCredentials: 'access_token',
  RefreshToken: 'refresh_token',
  AuthorizationCode: 'authorization_code',
  DeviceCode: 'device_code',
};

export interface AdapterDependencies {
  db: Db;
  clients: ClientStore;
  payloadKey: SealingKey;
  payloadKeys: ReadonlyMap<string, Buffer>;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
const expiry = (expiresIn: number | undefined) => (expiresIn ? new Date(Date.now() + expiresIn * 1000) : null);

function joinAudience(aud: unknown): string | null {
  if (Array.isArray(aud)) return aud.join(' ');
  return typeof aud === 'string' ? aud : null;
}

/** Tokens: one ledger entry each; the payload sealed, bound to its row by the lookup hash. */
class LedgerAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly deps: AdapterDependencies,
  ) {}

  private get type(): EntryType {
    return LEDGER_TYPES[this.model]!;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const lookupHash = sha256(id);
    const sealed = seal(JSON.stringify(payload), this.deps.payloadKey, `token:${lookupHash}`);
    const expiresAt = payload.exp ? new Date(payload.exp * 1000) : expiry(expiresIn)!;
    const fields = {
      subject: payload.accountId ?? (this.model === 'ClientCredentials' ? (payload.clientId ?? null) : null),
      grantId: payload.grantId ?? null,
      sessionUid: payload.sessionUid ?? null,
      scope: payload.scope ?? null,
      audience: joinAudience(payload.aud),
      payload: sealed,
      userCodeHash: payload.userCode ? sha256(payload.userCode) : null,
      expiresAt,
    };
    await this.deps.db.tokenEntry.upsert({
      where: { lookupHash },
      update: fields,
      create: {
        id: randomUUID(),
        lookupHash,
        type: this.type,
        format: 'reference',
        status: 'valid',
        clientId: payload.clientId!,
        createdAt: payload.iat ? new Date(payload.iat * 1000) : new Date(),
        ...fields,
      },
    });
  }

  private async findWhere(where: { lookupHash: string } | { userCodeHash: string }): Promise<AdapterPayload | undefined> {
    const row = await this.deps.db.tokenEntry.findFirst({ where: { ...where, type: this.type } });
    if (!row?.payload || row.expiresAt.getTime() <= Date.now() || !LIVE_STATUSES.includes(row.status as never)) return undefined;
    const plain = unseal(row.payload, this.deps.payloadKeys, `token:${row.lookupHash}`);
    if (plain === undefined) return undefined;
    const payload = JSON.parse(plain) as AdapterPayload;
    if (payload.kind !== this.model) return undefined;
    if (row.status === 'redeemed') payload.consumed = seconds(row.redeemedAt ?? new Date());
    return payload;
  }

  find(id: string) {
    return this.findWhere({ lookupHash: sha256(id) });
  }

  findByUserCode(userCode: string) {
    return this.findWhere({ userCodeHash: sha256(userCode) });
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  /** Single use: only one of several racing redemptions moves the entry from valid to redeemed. */
  async consume(id: string): Promise<void> {
    const { count } = await this.deps.db.tokenEntry.updateMany({
      where: { lookupHash: sha256(id), status: 'valid' },
      data: { status: 'redeemed', redeemedAt: new Date() },
    });
    if (count === 0) throw new errors.InvalidGrant(`${this.type.replace('_', ' ')} already used`);
  }

  async destroy(id: string): Promise<void> {
    await this.deps.db.tokenEntry.updateMany({
      where: { lookupHash: sha256(id), status: { in: LIVE_STATUSES } },
      data: { status: 'revoked', revokedAt: new Date() },
    });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.deps.db.tokenEntry.updateMany({
      where: { grantId, type: this.type, status: { in: LIVE_STATUSES } },
      data: { status: 'inactive', revokedAt: new Date() },
    });
  }
}

/** Sessions, grants, interactions and the like: sealed JSON keyed by a hash of their id. */
class RecordAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly deps: AdapterDependencies,
  ) {}

  private key(id: string) {
    return { model_id: { model: this.model, id: sha256(id) } };
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const hashed = sha256(id);
    const fields = {
      payload: seal(JSON.stringify(payload), this.deps.payloadKey, `${this.model}:${hashed}`),
      grantId: payload.grantId ?? null,
      uid: payload.uid ?? null,
      expiresAt: expiry(expiresIn),
    };
    await this.deps.db.providerRecord.upsert({ where: this.key(id), update: fields, create: { model: this.model, id: hashed, ...fields } });
  }

  private open(row: { id: string; payload: string; expiresAt: Date | null; consumedAt: Date | null } | null) {
    if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
    const plain = unseal(row.payload, this.deps.payloadKeys, `${this.model}:${row.id}`);
    if (plain === undefined) return undefined;
    const payload = JSON.parse(plain) as AdapterPayload;
    if (row.consumedAt) payload.consumed = seconds(row.consumedAt);
    return payload;
  }

  async find(id: string) {
    return this.open(await this.deps.db.providerRecord.findUnique({ where: this.key(id) }));
  }

  async findByUid(uid: string) {
    return this.open(await this.deps.db.providerRecord.findFirst({ where: { model: this.model, uid } }));
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(id: string): Promise<void> {
    await this.deps.db.providerRecord.updateMany({ where: { model: this.model, id: sha256(id) }, data: { consumedAt: new Date() } });
  }

  async destroy(id: string): Promise<void> {
    await this.deps.db.providerRecord.deleteMany({ where: { model: this.model, id: sha256(id) } });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.deps.db.providerRecord.deleteMany({ where: { model: this.model, grantId } });
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
  return function adapterFor(model: string): Adapter {
    if (model === 'Client') return new ClientAdapter(deps);
    if (model in LEDGER_TYPES) return new LedgerAdapter(model, deps);
    return new RecordAdapter(model, deps);
  };
}
