import { randomBytesPooled, randomToken } from '../lib/crypto.js';

/**
 * Every token carries the mode it was issued in, so it is checked by that mode's rules whatever its
 * client's mode is now. Reference tokens are 43 characters of randomness (the value is the id); JWTs
 * and stateless refresh tokens carry a jti, and a stateless jti is marked by its prefix.
 */
const STATELESS_PREFIX = 'stl_';

export function newReferenceId(): string {
  return randomToken();
}

export function newStatelessJti(): string {
  return `${STATELESS_PREFIX}${randomBytesPooled(16).toString('base64url')}`;
}

export function isStatelessJti(id: string): boolean {
  return id.length === STATELESS_PREFIX.length + 22 && id.startsWith(STATELESS_PREFIX);
}

/** A reference token value: exactly 43 base64url characters. */
export function looksLikeReference(value: string): boolean {
  return value.length === 43 && /^[A-Za-z0-9_-]+$/.test(value);
}
