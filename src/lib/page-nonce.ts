import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';

// Every HTML page's Content-Security-Policy allows scripts only with a nonce made for its response
// (http/security-headers.ts). Whatever renders a page's inline script, Tally's or oidc-provider's,
// reads the nonce of that response here.

const nonces = new WeakMap<ServerResponse, string>();

/** A new nonce for `res`: 16 random bytes, base64 (CSP3's base64-value). */
export function newPageNonce(res: ServerResponse): string {
  const nonce = randomBytes(16).toString('base64');
  nonces.set(res, nonce);
  return nonce;
}

/** The nonce the response's Content-Security-Policy allows; undefined when none was given. */
export function pageNonceOf(res: ServerResponse): string | undefined {
  return nonces.get(res);
}
