import type { Runtime } from '../runtime.js';
import { addSigningKeys } from '../storage/keys.js';

/**
 * Adds a signing key per algorithm. The older ones stay published while a token they signed may
 * live (ID tokens and access tokens: at least an hour), after the new ones' activation delay.
 */
export async function rotateSigningKeys({ db, config }: Pick<Runtime, 'db' | 'config'>) {
  const retireAfterMs = (config.keyActivationDelay + Math.max(config.accessTokenTtl, 3600)) * 1000;
  const added = await addSigningKeys(db, config.secretKey, retireAfterMs);
  return { added, previous_keys_retire_at: new Date(Date.now() + retireAfterMs).toISOString() };
}
