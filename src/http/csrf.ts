import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../lib/crypto.js';

/**
 * A CSRF token bound to one interaction: an HMAC of its uid. Reading the interaction already needs the
 * browser's interaction cookie, so a page from another site can neither read nor forge a valid pair.
 */
export function createCsrf(key: string) {
  const tokenFor = (uid: string) => createHmac('sha256', key).update(`csrf:${uid}`).digest('base64url');
  return {
    tokenFor,
    verify: (uid: string, presented: unknown) => typeof presented === 'string' && constantTimeEqual(tokenFor(uid), presented),
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
