/**
 * oidc-provider refuses any JWT at introspection and revocation before looking it up
 * (shared/reject_structured_tokens.js; no setting turns that off). Tally's own JWT access tokens get
 * past it marked: where the form is parsed (protocol-request.ts), a `token` that looks like a JWT is
 * sent on as `jwt~<token>`, which is no JWT, and the access-token lookup (token-modes.ts) takes the
 * mark off again. A marked value keeps `jti` in the answer: introspection leaves it out only when it
 * equals the token sent.
 */
const JWT_MARK = 'jwt~';

/** Three dot-separated parts: a JWS in compact form, as far as the mark cares. */
export function looksLikeJwt(value: string): boolean {
  return value.split('.').length === 3;
}

export function markJwt(value: string): string {
  return `${JWT_MARK}${value}`;
}

/** The value without its mark; any other value as it is. */
export function unmarkJwt(value: unknown): unknown {
  return typeof value === 'string' && value.startsWith(JWT_MARK) ? value.slice(JWT_MARK.length) : value;
}
