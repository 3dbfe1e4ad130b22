import type { IncomingHttpHeaders } from 'node:http';
import { parse as parseForm } from 'node:querystring';
import type Provider from 'oidc-provider';
// Internals, used so that the token is found exactly as oidc-provider's own introspection finds it.
// @ts-expect-error no type declarations for oidc-provider's internals
import providerInternals from 'oidc-provider/lib/helpers/weak_cache.js';
// @ts-expect-error no type declarations for oidc-provider's internals
import { findToken } from 'oidc-provider/lib/helpers/token_find.js';
import { looksLikeReference } from '../tokens/token-ids.js';
import type { VerifiedSecrets } from './client-secrets.js';

/** The answer for a request the direct path took: a 200 with this JSON body and INTROSPECTION_HEADERS. */
export type IntrospectionAnswer = Record<string, unknown>;

/** What oidc-provider sends with an introspection answer to a request without an Origin. */
export const INTROSPECTION_HEADERS = {
  'cache-control': 'no-store',
  'content-type': 'application/json; charset=utf-8',
  vary: 'Origin',
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'WWW-Authenticate',
} as const;

/** What the direct path reads of a request. */
export interface IntrospectionRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Token = {
  kind: string;
  isValid: boolean;
  grantId?: string;
  clientId: string;
  accountId?: string;
  extra?: Record<string, unknown>;
  exp?: number;
  iat?: number;
  sid?: string;
  jti: string;
  aud?: unknown;
  rar?: unknown;
  scope?: string;
  tokenType?: string;
  isSenderConstrained(): boolean;
};
type Client = { clientId: string; clientAuthMethod: string; clientSecret?: string; subjectType?: string; checkClientSecretExpiration(message: string): void };
type Grant = { isExpired: boolean; clientId: string; accountId: string };

const FORM = 'application/x-www-form-urlencoded';
const INTROSPECTABLE = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);
const CLIENT_AUTH_PARAMS = ['client_id', 'client_secret', 'client_assertion', 'client_assertion_type'];
// Headers that bring in CORS, DPoP or attestation handling: oidc-provider answers those requests.
const HANDLED_ELSEWHERE = ['origin', 'dpop', 'oauth-client-attestation', 'oauth-client-attestation-pop'];
const VSCHAR = /^[\x20-\x7E]*$/;
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
    return clientId && secret && VSCHAR.test(clientId) && VSCHAR.test(secret) ? { clientId, secret } : undefined;
  } catch {
    return undefined;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * Introspection of a reference token by a client authenticating with a client secret it used
 * before, answered without oidc-provider's Koa stack: the request path (routing, body parsing, client
 * authentication middleware) costs more than the introspection itself.
 *
 * The answer is oidc-provider's own: the token is found with its `findToken`, judged with its models
 * (validity, grant) and written out field by field as its introspection action writes it. Anything
 * this path does not cover returns `undefined` and goes to oidc-provider, which then also produces
 * every error: other client authentication methods, a secret not verified in the last few minutes,
 * JWTs and stateless tokens, CORS, DPoP, attestation, duplicated or missing parameters, and tokens
 * with sender constraints or authorization details. It refuses to run at all under configurations
 * it does not reproduce (JWT introspection responses, pairwise subjects, attestation, a custom allowedPolicy).
 */
export function createDirectIntrospection(provider: Provider, secrets: VerifiedSecrets) {
  const { configuration } = providerInternals(provider) as {
    configuration: {
      subjectTypes: Iterable<string>;
      features: { jwtIntrospection: { enabled: boolean }; attestClientAuth: { enabled: boolean }; introspection: { enabled: boolean; allowedPolicy: { name: string } } };
    };
  };
  const { features } = configuration;
  // The default policy lets every authenticated confidential client introspect any token.
  const reproducible =
    features.introspection.enabled &&
    !features.jwtIntrospection.enabled &&
    !features.attestClientAuth.enabled &&
    ![...configuration.subjectTypes].includes('pairwise') &&
    features.introspection.allowedPolicy.name === 'introspectionAllowedPolicy';
  const models = provider as unknown as {
    Client: { find(id: string): Promise<Client | undefined> };
    Grant: { find(id: string, options: object): Promise<Grant | undefined> };
  };

  async function authenticate(headers: IncomingHttpHeaders): Promise<Client | undefined> {
    const credentials = basicCredentials(headers.authorization);
    if (!credentials) return undefined;
    const client = await models.Client.find(credentials.clientId);
    if (!client?.clientSecret?.startsWith('$argon2')) return undefined;
    if (client.clientAuthMethod !== 'client_secret_basic' && client.clientAuthMethod !== 'client_secret_post') return undefined;
    try {
      client.checkClientSecretExpiration('expired');
    } catch {
      return undefined;
    }
    return secrets.isKnown(client.clientId, client.clientSecret, credentials.secret) ? client : undefined;
  }

  /** Whether the token counts, as oidc-provider judges it: valid, and its grant still in place. */
  async function active(token: Token | undefined): Promise<Token | undefined> {
    if (!token?.isValid) return undefined;
    if (token.grantId) {
      const grant = await models.Grant.find(token.grantId, { ignoreExpiration: true });
      if (!grant || grant.isExpired || grant.clientId !== token.clientId || grant.accountId !== token.accountId) return undefined;
    }
    return INTROSPECTABLE.has(token.kind) ? token : undefined;
  }

  return {
    /** The answer, or undefined when oidc-provider must answer this request. */
    async answer(request: IntrospectionRequest): Promise<IntrospectionAnswer | undefined> {
      if (!reproducible) return undefined;
      const { headers } = request;
      const [type, ...parameters] = (headers['content-type'] ?? '').split(';').map((part) => part.trim().toLowerCase());
      if (type !== FORM || parameters.some((parameter) => parameter !== 'charset=utf-8')) return undefined;
      if (HANDLED_ELSEWHERE.some((name) => headers[name] !== undefined)) return undefined;
      const form = parseForm(request.body.toString('utf8'));
      const value = single(form.token);
      const hint = form.token_type_hint;
      if (!value || !looksLikeReference(value) || Array.isArray(hint) || CLIENT_AUTH_PARAMS.some((name) => form[name] !== undefined)) return undefined;

      const client = await authenticate(headers);
      if (!client) return undefined;

      const token = await active((await findToken(provider, value, hint)) as Token | undefined);
      if (!token) return { active: false };
      if (token.rar !== undefined || token.isSenderConstrained()) return undefined;

      // Field for field (and in order) what oidc-provider's introspection action writes.
      const body: Record<string, unknown> = { active: false };
      if (token.accountId) body.sub = token.accountId;
      Object.assign(body, {
        ...token.extra,
        active: true,
        client_id: token.clientId,
        exp: token.exp,
        iat: token.iat,
        sid: token.sid,
        iss: provider.issuer,
        jti: token.jti !== value ? token.jti : undefined,
        aud: token.aud,
        authorization_details: undefined,
        scope: token.scope || undefined,
        cnf: undefined,
        token_type: token.kind !== 'RefreshToken' ? token.tokenType : undefined,
      });
      return body;
    },
  };
}

export type DirectIntrospection = ReturnType<typeof createDirectIntrospection>;
