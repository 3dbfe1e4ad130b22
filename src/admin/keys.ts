import type { z } from 'zod';
import type { Runtime } from '../runtime.js';
import { addSigningKeys, listSigningKeys, type SigningKeyRow } from '../storage/keys.js';
import { parseInput } from './input.js';
import { keyRotationBody, type signingKeyRotation, type signingKeyView } from './schemas.js';

export type SigningKeyView = z.output<typeof signingKeyView>;

/**
 * Adds a signing key per algorithm. The older ones stay published while a token they signed may
 * live (ID tokens and access tokens: at least an hour), after the new ones' activation delay.
 */
export async function rotateSigningKeys({ db, config }: Pick<Runtime, 'db' | 'config'>) {
  const retireAfterMs = (config.keyActivationDelay + Math.max(config.accessTokenTtl, 3600)) * 1000;
  const retiredAt = new Date(Date.now() + retireAfterMs);
  const added = await addSigningKeys(db, config.secretKeys, retiredAt);
  return { added, previous_keys_retire_at: retiredAt.toISOString() };
}

const toKeyView = (row: SigningKeyRow): SigningKeyView => ({
  kid: row.kid,
  alg: row.alg as SigningKeyView['alg'],
  status: row.status,
  created_at: row.createdAt.toISOString(),
  retires_at: row.retiredAt?.toISOString() ?? null,
});

/** The signing keys, newest first, with their status now; never private material. */
export async function listKeys({ db, config }: Pick<Runtime, 'db' | 'config'>): Promise<{ items: SigningKeyView[]; next_cursor: null }> {
  const rows = await listSigningKeys(db, config.secretKeys, config.keyActivationDelay * 1000);
  return { items: rows.map(toKeyView), next_cursor: null };
}

/** A rotation takes no body, or an empty object. */
export const parseRotationRequest = (body: unknown): void => void (body === undefined || parseInput(keyRotationBody, body));

/** `rotateSigningKeys`, answered with the new keys as `listKeys` shows them. */
export async function rotateKeys(runtime: Pick<Runtime, 'db' | 'config'>): Promise<z.output<typeof signingKeyRotation>> {
  const { added, previous_keys_retire_at } = await rotateSigningKeys(runtime);
  const kids = new Set(added.map((k) => k.kid));
  const { items } = await listKeys(runtime);
  return { keys: items.filter((k) => kids.has(k.kid)), previous_keys_retire_at };
}
