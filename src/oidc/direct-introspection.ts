import type Provider from 'oidc-provider';
// Internals, used so that the token is found exactly as oidc-provider's own introspection finds it.
// @ts-expect-error no type declarations for oidc-provider's internals
import providerInternals from 'oidc-provider/lib/helpers/weak_cache.js';
// @ts-expect-error no type declarations for oidc-provider's internals
import { findToken } from 'oidc-provider/lib/helpers/token_find.js';
import { looksLikeReference } from '../tokens/token-ids.js';
import type { VerifiedSecrets } from './client-secrets.js';
import { directForm, knownBasicClient, type DirectRequest } from './direct-client-auth.js';
import { ledgerOf } from './provider-ledger.js';

type Token = {
  kind: string;
  grantId?: string;
  clientId: string;
  accountId?: string;
  extra?: Record<string, unknown>;
  exp?: number;
  consumed?: number;
  iat?: number;
  sid?: string;
  jti: string;
  aud?: unknown;
  rar?: unknown;
  scope?: string;
  tokenType?: string;
  isSenderConstrained(): boolean;
};

const INTROSPECTABLE = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);
const PARAMETERS = new Set(['token', 'token_type_hint']);

/**
 * Introspection of a reference token by a client authenticating with a client secret it used
 * before, answered without oidc-provider's Koa stack: the request path (routing, body parsing, client
 * authentication middleware) costs more than the introspection itself.
 *
 * The answer is oidc-provider's own: the token is found with its `findToken`, judged with its models
 * (validity, grant) and written out field by field as its introspection action writes it. Anything
 * this path does not cover returns `undefined` and goes to oidc-provider, which then also produces
 * every error: other client authentication methods, a secret not verified in the last few minutes,
 * JWTs and stateless tokens, CORS, DPoP, attestation, repeated, missing or unexpected parameters, and
 * tokens with sender constraints or authorization details. It refuses to run at all under
 * configurations it does not reproduce (JWT introspection responses, pairwise subjects, attestation,
 * a custom allowedPolicy).
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
  const ledger = ledgerOf(provider);

  /** The token when introspection may show it and the ledger manager finds it active (its grant included, as oidc-provider's introspection checks). */
  async function active(token: Token | undefined): Promise<Token | undefined> {
    if (!token || !INTROSPECTABLE.has(token.kind)) return undefined;
    return (await ledger.findActive({ found: token })) ? token : undefined;
  }

  return {
    /** The JSON body of a 200 (sent with DIRECT_ANSWER_HEADERS), or undefined when oidc-provider must answer. */
    async answer(request: DirectRequest): Promise<Record<string, unknown> | undefined> {
      if (!reproducible) return undefined;
      const form = directForm(request);
      if (!form || !Object.keys(form).every((name) => PARAMETERS.has(name))) return undefined;
      const value = form.token;
      if (!value || !looksLikeReference(value)) return undefined;

      if (!(await knownBasicClient(provider, secrets, request.headers))) return undefined;

      const token = await active((await findToken(provider, value, form.token_type_hint)) as Token | undefined);
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
