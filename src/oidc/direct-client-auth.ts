import type { IncomingHttpHeaders } from 'node:http';
import type Provider from 'oidc-provider';
import type { VerifiedSecrets } from './client-secrets.js';
import { NO_VSCHAR, type ProviderClient } from './internals/index.js';
import type { ProtocolRequest } from './protocol-request.js';

// Headers that bring in CORS, DPoP or attestation handling: oidc-provider answers those requests.
const HANDLED_ELSEWHERE = ['origin', 'dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop'];
const BASE64 = /^([A-Za-z0-9+/]*)(={0,2})$/;

function isValidBase64(input: string): boolean {
  const match = BASE64.exec(input);
  if (!match?.[1]) return false;
  const remainder = match[1].length % 4;
  if (!match[2]) return remainder !== 1;
  return (match[1].length + match[2].length) % 4 === 0 && match[2].length === 4 - remainder;
}

/** RFC 6749 §2.3.1: client_id and client_secret are form-encoded inside the Basic credentials. */
function basicCredentials(authorization: string | undefined): { clientId: string; secret: string } | undefined {
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

/**
 * The form of a request a direct path may take (parsed already: protocol-request.ts): a UTF-8 form
 * post without CORS, DPoP or attestation headers, whose parameters are each given once. Undefined for anything else.
 */
export function directForm({ headers, form, utf8Form }: ProtocolRequest): Record<string, string> | undefined {
  if (!utf8Form || !form) return undefined;
  if (HANDLED_ELSEWHERE.some((name) => headers[name] !== undefined)) return undefined;
  return Object.values(form).every((value) => typeof value === 'string') ? (form as Record<string, string>) : undefined;
}

/**
 * The client, when it authenticates with HTTP Basic and a secret verified within the last few
 * minutes, and oidc-provider would accept that method for it; undefined otherwise (oidc-provider then
 * authenticates it, with argon2, and produces any error).
 */
export async function knownBasicClient(provider: Provider, secrets: VerifiedSecrets, headers: IncomingHttpHeaders): Promise<ProviderClient | undefined> {
  const credentials = basicCredentials(headers.authorization);
  if (!credentials) return undefined;
  const client = (await (provider.Client as unknown as { find(id: string): Promise<ProviderClient | undefined> }).find(credentials.clientId)) ?? undefined;
  if (!client?.clientSecret?.startsWith('$argon2')) return undefined;
  // With HTTP Basic, oidc-provider accepts either secret method as the registered one.
  if (client.clientAuthMethod !== 'client_secret_basic' && client.clientAuthMethod !== 'client_secret_post') return undefined;
  try {
    client.checkClientSecretExpiration('expired');
  } catch {
    return undefined;
  }
  return secrets.isKnown(client.clientId, client.clientSecret, credentials.secret) ? client : undefined;
}

/**
 * What oidc-provider sends with a JSON answer of its client endpoints (token, introspection) to a
 * request without an Origin: no caching, and its CORS headers.
 */
export const DIRECT_ANSWER_HEADERS = {
  'cache-control': 'no-store',
  'content-type': 'application/json; charset=utf-8',
  vary: 'Origin',
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'WWW-Authenticate',
} as const;
