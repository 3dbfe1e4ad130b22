import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
import { newPageNonce } from '../lib/page-nonce.js';

// Every response's Content-Security-Policy: a page may run only the inline scripts that carry the nonce
// made for its response (no 'unsafe-inline' anywhere), take styles only from Tally's stylesheet
// (views/assets/tally.css), fetch only from this origin (the passkey challenge), and be framed by no one.

const COMMON = ["default-src 'none'", "style-src 'self'", "img-src 'self' data:", "frame-ancestors 'none'", "base-uri 'none'"];

/** Tally's own routes (interaction pages, admin, health): forms post to this origin (plus the client's, set per page). */
export const appSecurityHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      scriptSrc: [(_req: IncomingMessage, res: ServerResponse) => `'nonce-${newPageNonce(res)}'`],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      // The passkey forms' script (views/assets/passkeys.js) fetches its WebAuthn challenge from this origin.
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
  },
});

/** helmet's other headers on oidc-provider's responses (the same on each: server.ts works them out once). */
export const providerSecurityHeaders = helmet({ contentSecurityPolicy: false });

/**
 * The policy of a response of oidc-provider's, with a new nonce: its form_post page submits itself with
 * an inline script (given the nonce: oidc/internals/form-post.ts), and logout redirects to registered
 * clients, so form-action is left open there.
 */
export function providerContentSecurityPolicy(res: ServerResponse): string {
  return [...COMMON, `script-src 'nonce-${newPageNonce(res)}'`].join(';');
}

/** The token, introspection and revocation endpoints answer machines, never a page: no nonce to make. */
export const MACHINE_ENDPOINT_POLICY = [...COMMON, "script-src 'none'"].join(';');

/**
 * The admin console (/console): a static shell whose scripts are its own module files (no inline
 * script, so 'self' rather than a nonce), calling the admin API and the token endpoint with fetch.
 */
export const CONSOLE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join(';');
