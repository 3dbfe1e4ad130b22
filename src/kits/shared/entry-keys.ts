import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Keys for what the kits share through Redis, derived from the client secret (HKDF-SHA-256): only
 * processes holding the secret can write an entry the others believe. `salt` and `info` keep each use
 * apart (the client kit's token entry, the validator's results).
 */
export function deriveEntryKey(clientSecret: string, salt: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clientSecret, salt, info, 32));
}

/** HMAC-SHA-256 of the parts (JSON-encoded together, so that no two lists of parts encode alike), base64url. */
export function entryMac(key: Buffer, parts: unknown[]): string {
  return createHmac('sha256', key).update(JSON.stringify(parts)).digest('base64url');
}

/** Whether `mac` is the MAC of the parts (compared in constant time). */
export function entryMacMatches(key: Buffer, parts: unknown[], mac: unknown): boolean {
  if (typeof mac !== 'string') return false;
  const expected = Buffer.from(entryMac(key, parts));
  const given = Buffer.from(mac);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** AES-256-GCM: iv, ciphertext and tag, base64url; `associated` (e.g. the Redis key) is authenticated too. */
export function sealEntry(key: Buffer, plaintext: string, associated: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(associated));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** The plaintext of a sealed entry; undefined when it was not sealed with this key for this `associated`. */
export function unsealEntry(key: Buffer, sealed: string, associated: string): string | undefined {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 28) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(associated));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString();
  } catch {
    return undefined;
  }
}
