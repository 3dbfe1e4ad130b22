import { createCipheriv, createDecipheriv, createHash, hash, randomFillSync, timingSafeEqual } from 'node:crypto';

/**
 * SHA-256 of a value, base64url: how every token identifier is stored and looked up. One-shot
 * (`crypto.hash`): about a third of the CPU of a Hash object, on every token request.
 */
export function sha256(value: string | Buffer): string {
  return hash('sha256', value, 'base64url');
}

// Every token needs fresh random bytes; one call into OpenSSL per 4 KiB instead of one per token
// (about 6 µs a call here against well under 1 µs for a slice), as nanoid and randomUUID do.
const randomPool = Buffer.alloc(4096);
let randomPoolOffset = randomPool.length;

/** `size` fresh random bytes (a copy, so later refills of the pool cannot change them). */
export function randomBytesPooled(size: number): Buffer {
  if (size > randomPool.length) throw new RangeError('randomBytesPooled: size over the pool');
  if (randomPoolOffset + size > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const bytes = Buffer.from(randomPool.subarray(randomPoolOffset, randomPoolOffset + size));
  randomPool.fill(0, randomPoolOffset, randomPoolOffset + size);
  randomPoolOffset += size;
  return bytes;
}

/**
 * A UUID of version 7 (RFC 9562): the time in milliseconds, then 74 random bits. Ledger entries are
 * keyed by one, so that a new entry's key lands at the end of the primary-key index rather than
 * anywhere in it: fewer pages touched and written to the log per insert (about a sixth of an
 * insert's CPU on a 150,000-entry ledger here, bench/ANALYSIS.md).
 */
export function timeOrderedUuid(now = Date.now()): string {
  const bytes = randomBytesPooled(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** 256 random bits as a 43-character base64url string. */
export function randomToken(): string {
  return randomBytesPooled(32).toString('base64url');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right) && a.length === b.length;
}

export interface SealingKey {
  id: string;
  key: Buffer;
}

/**
 * AES-256-GCM with the key id in clear, so that keys can rotate: `<kid>.<iv|ciphertext|tag>`.
 * `context` is bound as additional data, so a sealed value cannot be moved to another row or use.
 */
export function seal(plaintext: string, key: SealingKey, context = ''): string {
  const iv = randomBytesPooled(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${key.id}.${body.toString('base64url')}`;
}

/** Opens a sealed value; returns undefined for anything that is not ours or was tampered with. */
export function unseal(sealed: string, keys: ReadonlyMap<string, Buffer>, context = ''): string | undefined {
  const dot = sealed.indexOf('.');
  if (dot <= 0) return undefined;
  const key = keys.get(sealed.slice(0, dot));
  if (!key) return undefined;
  const body = Buffer.from(sealed.slice(dot + 1), 'base64url');
  if (body.length < 28) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, 12));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * Like `seal`, but one base64url string with no separator (`kidLength|kid|iv|ciphertext|tag`), so the
 * result never looks like a JWT and fits where an opaque token is expected.
 */
export function sealCompact(plaintext: string, key: SealingKey, context: string): string {
  const kid = Buffer.from(key.id);
  const [, body] = seal(plaintext, key, context).split('.');
  return Buffer.concat([Buffer.from([kid.length]), kid, Buffer.from(body!, 'base64url')]).toString('base64url');
}

export function unsealCompact(sealed: string, keys: ReadonlyMap<string, Buffer>, context: string): string | undefined {
  const raw = Buffer.from(sealed, 'base64url');
  const kidLength = raw[0];
  if (kidLength === undefined || raw.length < 1 + kidLength + 28) return undefined;
  const kid = raw.subarray(1, 1 + kidLength).toString();
  return unseal(`${kid}.${raw.subarray(1 + kidLength).toString('base64url')}`, keys, context);
}
