/**
 * The segments of a compact JWS, decoded as jose decodes them, for the checks that read JWTs without jose
 * (DPoP proofs here and in the validator kit, Tally's own access-token JWTs at the server).
 */

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// jose's decoding: UTF-8 that must be valid.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A base64url segment as its encoder writes it, decoded; else undefined: no padding, no length that
 * leaves a lone character, and no stray bits in the last character (2 or 4 unused bits must be zero),
 * which is what encoding the decoded bytes again would show, without encoding them.
 */
export function decodeSegment(segment: string): Buffer | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  const tail = segment.length % 4;
  if (tail === 1) return undefined;
  if (tail !== 0 && (ALPHABET.indexOf(segment[segment.length - 1]!) & (tail === 2 ? 0b1111 : 0b11)) !== 0) return undefined;
  return Buffer.from(segment, 'base64url');
}

/** A JSON object (not an array, not null) in a base64url segment; else undefined. */
export function objectIn(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeSegment(segment);
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
