import type { AdapterPayload } from 'oidc-provider';
import { seal, sha256, unseal, type SealingKey } from '../lib/crypto.js';
import type { ProviderRecordRow, ProviderRecordStore } from '../storage/provider-records.js';

export interface SealingKeys {
  payloadKey: SealingKey;
  payloadKeys: ReadonlyMap<string, Buffer>;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

/**
 * oidc-provider's records other than tokens (sessions, grants, interactions, ...), as its adapter
 * contract has them: keyed by a hash of their id, their payload sealed (AES-256-GCM) and bound to
 * their row (the associated data names the model and the hash). Read by the adapter, and by the
 * ledger manager for the grant a token names.
 */
export function createSealedRecords(store: ProviderRecordStore, { payloadKey, payloadKeys }: SealingKeys) {
  function open(model: string, row: ProviderRecordRow | undefined): AdapterPayload | undefined {
    if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
    const plain = unseal(row.payload, payloadKeys, `${model}:${row.id}`);
    if (plain === undefined) return undefined;
    const payload = JSON.parse(plain) as AdapterPayload;
    if (row.consumedAt) payload.consumed = seconds(row.consumedAt);
    return payload;
  }

  return {
    async save(model: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): Promise<void> {
      const hashed = sha256(id);
      await store.upsert({
        model,
        id: hashed,
        payload: seal(JSON.stringify(payload), payloadKey, `${model}:${hashed}`),
        grantId: payload.grantId ?? null,
        uid: payload.uid ?? null,
        expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
      });
    },

    /** The payload, or undefined when there is none, it expired, or it does not open. */
    async find(model: string, id: string): Promise<AdapterPayload | undefined> {
      return open(model, await store.find(model, sha256(id)));
    },

    async findByUid(model: string, uid: string): Promise<AdapterPayload | undefined> {
      return open(model, await store.findByUid(model, uid));
    },

    consume: (model: string, id: string) => store.consume(model, sha256(id)),
    destroy: (model: string, id: string) => store.delete(model, sha256(id)),
    revokeByGrantId: (model: string, grantId: string) => store.deleteByGrantId(model, grantId),
  };
}

export type SealedRecords = ReturnType<typeof createSealedRecords>;
