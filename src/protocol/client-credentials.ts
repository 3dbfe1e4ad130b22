/**
 * HTTP Basic client authentication (RFC 6749 §2.3.1): the client_id and client_secret, each
 * form-encoded, joined by a colon, base64-encoded. Written by the kits, read by every endpoint of the
 * server that authenticates clients this way, with oidc-provider's rules (lib/shared/client_auth.js),
 * so that Tally's own endpoints accept exactly what oidc-provider's accept. Imports nothing: the kits
 * are published apart from the server.
 */

export interface ClientCredentials {
  clientId: string;
  secret: string;
}

/** The `Authorization` header value for a client's credentials. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (v: string) => encodeURIComponent(v).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

const BASE64 = /^([A-Za-z0-9+/]*)(={0,2})$/;
// A character outside VSCHAR (RFC 6749 Appendix A): never part of a client_id or a client_secret.
const NO_VSCHAR = /[^\x20-\x7E]/;

/** Canonical base64 only: padding, when present, exactly what the length needs. */
function isValidBase64(input: string): boolean {
  const match = BASE64.exec(input);
  if (!match?.[1]) return false;
  const remainder = match[1].length % 4;
  if (!match[2]) return remainder !== 1;
  return (match[1].length + match[2].length) % 4 === 0 && match[2].length === 4 - remainder;
}

/**
 * The credentials in an `Authorization: Basic` header: undefined for any other scheme, a malformed
 * value, a part that does not decode or holds a character outside VSCHAR, or an empty id or secret
 * (oidc-provider refuses each of those).
 */
export function parseBasicCredentials(authorization: string | undefined): ClientCredentials | undefined {
  const parts = authorization?.split(' ');
  if (parts?.length !== 2 || parts[0]!.toLowerCase() !== 'basic' || !isValidBase64(parts[1]!)) return undefined;
  const basic = Buffer.from(parts[1]!, 'base64').toString('utf8');
  const colon = basic.indexOf(':');
  if (colon === -1) return undefined;
  try {
    const decode = (part: string) => decodeURIComponent(part.replace(/\+/g, '%20'));
    const clientId = decode(basic.slice(0, colon));
    const secret = decode(basic.slice(colon + 1));
    return clientId && secret && !NO_VSCHAR.test(clientId) && !NO_VSCHAR.test(secret) ? { clientId, secret } : undefined;
  } catch {
    return undefined;
  }
}
