import type { IncomingHttpHeaders } from 'node:http';
import { parse as parseForm, type ParsedUrlQuery } from 'node:querystring';
import type Provider from 'oidc-provider';
import { parseBasicCredentials } from '../protocol/client-credentials.js';
import type { VerifiedSecrets } from './client-secrets.js';

/** What a direct path reads of a request: its headers and its (already read) body. */
export interface DirectRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** oidc-provider's Client, as far as the direct paths read it. */
export interface ProviderClient {
  clientId: string;
  clientAuthMethod: string;
  clientSecret?: string;
  scope?: string;
  dpopBoundAccessTokens?: boolean;
  tlsClientCertificateBoundAccessTokens?: boolean;
  grantTypeAllowed(grantType: string): boolean;
  checkClientSecretExpiration(message: string): void;
}

const FORM = 'application/x-www-form-urlencoded';
// Headers that bring in CORS, DPoP or attestation handling: oidc-provider answers those requests.
const HANDLED_ELSEWHERE = ['origin', 'dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop'];
/**
 * The form of a request a direct path may take: a UTF-8 form post without CORS, DPoP or attestation
 * headers, whose parameters are each given once. Undefined for anything else.
 */
export function directForm({ headers, body }: DirectRequest): Record<string, string> | undefined {
  const [type, ...parameters] = (headers['content-type'] ?? '').split(';').map((part) => part.trim().toLowerCase());
  if (type !== FORM || parameters.some((parameter) => parameter !== 'charset=utf-8')) return undefined;
  if (HANDLED_ELSEWHERE.some((name) => headers[name] !== undefined)) return undefined;
  // node:querystring, as oidc-provider parses forms.
  const form: ParsedUrlQuery = parseForm(body.toString('utf8'));
  return Object.values(form).every((value) => typeof value === 'string') ? (form as Record<string, string>) : undefined;
}

/**
 * The client, when it authenticates with HTTP Basic and a secret verified within the last few
 * minutes, and oidc-provider would accept that method for it; undefined otherwise (oidc-provider then
 * authenticates it, with argon2, and produces any error).
 */
export async function knownBasicClient(provider: Provider, secrets: VerifiedSecrets, headers: IncomingHttpHeaders): Promise<ProviderClient | undefined> {
  const credentials = parseBasicCredentials(headers.authorization);
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
