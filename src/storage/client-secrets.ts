import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SealingKey } from '../lib/crypto.js';
import { isArgon2Hash, verifyArgon2ClientSecret } from './passwords.js';

// Client secrets that Tally generates carry 256 random bits: no guessing can reach them, so they need
// no slow hash. They are stored as HMAC-SHA-256 under a server key (sealed by the root key like the
// other stored keys; storage/keys.ts), `hmac-sha256$<keyId>$<base64url>`, and compared in constant
// time in microseconds. Secrets stored before that are argon2id hashes (`$argon2id$...`): they still
// work, under client authentication's own bound (storage/passwords.ts), and the client store stores
// them again as HMAC on their first success.

const PREFIX = 'hmac-sha256';

function mac(key: Buffer, secret: string): Buffer {
  return createHmac('sha256', key).update(secret, 'utf8').digest();
}

/** The stored form of a client secret. */
export function keyedSecretHash(key: SealingKey, secret: string): string {
  return `${PREFIX}$${key.id}$${mac(key.key, secret).toString('base64url')}`;
}

export const isKeyedSecretHash = (stored: string): boolean => stored.startsWith(`${PREFIX}$`);

/** Whether `actual` is the secret `stored` was made from; false for a key this server does not hold. */
export function matchesKeyedSecretHash(keys: ReadonlyMap<string, Buffer>, stored: string, actual: string): boolean {
  const [prefix, keyId, value, ...rest] = stored.split('$');
  const key = keyId === undefined ? undefined : keys.get(keyId);
  if (prefix !== PREFIX || !key || value === undefined || rest.length) return false;
  const expected = Buffer.from(value, 'base64url');
  const presented = mac(key, actual);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

/**
 * `actual` against a stored hash of either form: `match` (and `legacy` when the hash is argon2's,
 * to be stored again as HMAC), or no match. Argon2 work may be refused (Overloaded); with
 * `keyedOnly`, an argon2 hash is not tried at all and answers no match.
 */
export async function compareClientSecret(
  keys: ReadonlyMap<string, Buffer>,
  stored: string | null | undefined,
  actual: string,
  { keyedOnly = false } = {},
): Promise<{ match: boolean; legacy: boolean }> {
  if (!stored) return { match: false, legacy: false };
  if (isKeyedSecretHash(stored)) return { match: matchesKeyedSecretHash(keys, stored, actual), legacy: false };
  if (keyedOnly || !isArgon2Hash(stored)) return { match: false, legacy: false };
  return { match: await verifyArgon2ClientSecret(stored, actual), legacy: true };
}
