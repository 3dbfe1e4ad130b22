import type Provider from 'oidc-provider';
// Internals, used so that the token is found exactly as oidc-provider's own introspection finds it.
import { findToken, providerConfiguration } from './internals/index.js';
import type { ProtocolRequest } from './protocol-request.js';
import { looksLikeReference } from '../tokens/token-ids.js';
import type { ClientSecrets } from './client-secrets.js';
import { knownBasicClient } from './direct-client-auth.js';
import {
  formPost,
  NO_FORM,
  onlyKnownParameters,
  reproducibleConfiguration,
  runGuards,
  type DeclineReason,
  type DirectContext,
  type DirectOutcome,
  type DirectState,
  type Guard,
} from './direct-guards.js';
import { ledgerOf } from './provider-ledger.js';
import { accessTokenVerifierOf, type AccessTokenVerifier } from './access-token-jwts.js';
import { unmarkJwt } from './jwt-mark.js';
import { introspectionAllowedPolicy, introspectionTokenType, mayIntrospect } from './introspection-policy.js';

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
  jkt?: string;
  'x5t#S256'?: string;
  isSenderConstrained(): boolean;
};

const INTROSPECTABLE = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);
const PARAMETERS = new Set(['token', 'token_type_hint']);

interface IntrospectionContext extends DirectContext {
  /** The token when it counts, as oidc-provider judges it (see `active` below). */
  active(token: Token | undefined): Promise<Token | undefined>;
  /** What the provider's JWT lookup judges itself (undefined: no JWT is introspected here). */
  jwts: AccessTokenVerifier | undefined;
}

interface IntrospectionState extends DirectState {
  readonly context: IntrospectionContext;
  /** The token, found and active; undefined when it is not (the answer is then `active: false`). */
  token: Token | undefined;
}

/**
 * A token this path introspects: a reference token, or a JWT (marked, see jwt-mark.ts) of the shape the
 * JWT lookup judges itself (access-token-jwts.ts: a key of this server's, the header it signs). Any
 * other JWT (an unknown kid, a key being rotated in, an odd header) and stateless refresh tokens are
 * oidc-provider's.
 */
function introspectableToken(state: IntrospectionState): DeclineReason | undefined {
  const value = state.form.token;
  if (!value) return 'missing_token';
  if (looksLikeReference(value)) return undefined;
  const jwt = unmarkJwt(value);
  if (jwt === value) return 'not_reference_token';
  return state.context.jwts?.decides(jwt as string) ? undefined : 'jwt_undecided';
}

/**
 * Finds the token as oidc-provider's introspection does, and keeps it if it is active. A marked JWT is
 * an access token whatever the hint says: found as one first (the order a hint only changes; no
 * refresh token has such a value), through the same lookup (token-modes.ts).
 */
async function findActiveToken(state: IntrospectionState): Promise<undefined> {
  const { form, context } = state;
  const hint = unmarkJwt(form.token) === form.token ? form.token_type_hint : 'access_token';
  state.token = await context.active((await findToken(context.provider, form.token!, hint)) as Token | undefined);
  return undefined;
}

/** Who may see the token (introspection-policy.ts): to anyone else it is `active: false`, as from oidc-provider. */
function visibleToCaller(state: IntrospectionState): undefined {
  if (state.token && !mayIntrospect(state.client!, state.token)) state.token = undefined;
  return undefined;
}

/** No authorization details: their answer carries details this path does not write. */
function noAuthorizationDetails({ token }: IntrospectionState): DeclineReason | undefined {
  return token?.rar !== undefined ? 'authorization_details' : undefined;
}

/** In order, as oidc-provider's introspection action (lib/actions/introspection.js) runs its steps. */
const GUARDS: readonly Guard<IntrospectionState>[] = [
  reproducibleConfiguration,
  formPost,
  onlyKnownParameters,
  introspectableToken,
  knownBasicClient,
  findActiveToken,
  visibleToCaller,
  noAuthorizationDetails,
];

/** Field for field (and in order) what oidc-provider's introspection action writes. */
function introspectionBody({ token, form, context }: IntrospectionState): Record<string, unknown> {
  if (!token) return { active: false };
  const body: Record<string, unknown> = { active: false };
  if (token.accountId) body.sub = token.accountId;
  // Stored one by one, not spread into a literal with more fields (lib/object-shapes.ts).
  if (token.extra) Object.assign(body, token.extra);
  body.active = true;
  body.client_id = token.clientId;
  body.exp = token.exp;
  body.iat = token.iat;
  body.sid = token.sid;
  body.iss = context.provider.issuer;
  body.jti = token.jti !== form.token ? token.jti : undefined;
  body.aud = token.aud;
  body.authorization_details = undefined;
  body.scope = token.scope || undefined;
  body.cnf = token.isSenderConstrained() ? {} : undefined;
  body.token_type = introspectionTokenType(token);
  // A sender-constrained token's binding, certificate first, as oidc-provider adds them.
  const cnf = body.cnf as Record<string, string> | undefined;
  if (token['x5t#S256']) cnf!['x5t#S256'] = token['x5t#S256'];
  if (token.jkt) cnf!.jkt = token.jkt;
  return body;
}

/**
 * Introspection of a reference token, or a JWT access token (jwt and stateless modes), by a client authenticating with a client secret it used
 * before, answered without oidc-provider's Koa stack: the request path (routing, body parsing, client
 * authentication middleware) costs more than the introspection itself.
 *
 * The answer is oidc-provider's own: the token is found with its `findToken`, judged with its models
 * (validity, grant) and written out field by field as its introspection action writes it. A request
 * this path does not cover is declined by one of its guards, with the reason, and goes to
 * oidc-provider, which then also produces every error: other client authentication methods, a secret
 * not verified in the last few minutes, JWTs this server's lookup leaves to jose, stateless refresh tokens, CORS, DPoP, attestation, repeated,
 * missing or unexpected parameters, and tokens with authorization details. A sender-constrained token's
 * answer (`token_type: DPoP`, `cnf`) is written here as oidc-provider writes it. It
 * declines everything under configurations it does not reproduce (JWT introspection responses,
 * pairwise subjects, attestation, an allowedPolicy other than Tally's).
 */
export function createDirectIntrospection(provider: Provider, secrets: ClientSecrets) {
  const configuration = providerConfiguration(provider);
  const { features } = configuration;
  const reproducible =
    features.introspection.enabled &&
    !features.jwtIntrospection.enabled &&
    !features.attestClientAuth.enabled &&
    ![...configuration.subjectTypes].includes('pairwise') &&
    features.introspection.allowedPolicy === introspectionAllowedPolicy;
  const ledger = ledgerOf(provider);

  /** The token when introspection may show it and the ledger manager finds it active (its grant included, as oidc-provider's introspection checks). */
  async function active(token: Token | undefined): Promise<Token | undefined> {
    if (!token || !INTROSPECTABLE.has(token.kind)) return undefined;
    return (await ledger.findActive({ found: token })) ? token : undefined;
  }

  const context: IntrospectionContext = { provider, secrets, reproducible, parameters: PARAMETERS, active, jwts: accessTokenVerifierOf(provider) };
  return {
    async answer(request: ProtocolRequest): Promise<DirectOutcome> {
      const state: IntrospectionState = { context, request, form: NO_FORM, client: undefined, token: undefined };
      const declined = await runGuards(GUARDS, state);
      return declined ? { declined } : { body: introspectionBody(state) };
    },
  };
}

export type DirectIntrospection = ReturnType<typeof createDirectIntrospection>;
