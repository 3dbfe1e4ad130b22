import type Provider from 'oidc-provider';
import type { ClientSecrets } from './client-secrets.js';
import type { ProviderClient, ProviderConfiguration } from './internals/index.js';
import type { ProtocolRequest } from './protocol-request.js';

/**
 * Why a direct answer left a request to oidc-provider, one per guard exit; counted on /metrics
 * (`tally_direct_answer_declines_total`). `failed`: a direct answer threw (logged), oidc-provider answered.
 */
export const DECLINE_REASONS = [
  'configuration',
  'content_type',
  'cors',
  'dpop',
  'dpop_unusual',
  'dpop_nonce',
  'dpop_invalid',
  'dpop_replayed',
  'attestation',
  'repeated_parameter',
  'unexpected_parameter',
  'missing_token',
  'not_reference_token',
  'jwt_undecided',
  'other_grant_type',
  'scope_syntax',
  'no_basic_credentials',
  'unknown_client',
  'client_auth_method',
  'secret_not_keyed',
  'secret_expired',
  'secret_not_verified',
  'client_throttled',
  'grant_type_not_allowed',
  'sender_constrained',
  'scope_not_allowed',
  'default_resource',
  'authorization_details',
  'token_unusable',
  'granted_resource',
  'failed',
] as const;
export type DeclineReason = (typeof DECLINE_REASONS)[number];

/** What a direct answer needs of its provider, worked out once per provider. */
export interface DirectContext {
  provider: Provider;
  /** The client-secret comparison (storage's, the stored hash read fresh). */
  secrets: ClientSecrets;
  /** Whether the provider's configuration is one the direct answer reproduces. */
  reproducible: boolean;
  /** The only form parameters the direct answer takes. */
  parameters: ReadonlySet<string>;
  /** Whether the direct answer judges DPoP proofs itself (else a request with one is oidc-provider's). */
  takesDpop?: boolean;
}

/** One request's way through a direct answer, as a Koa ctx is through oidc-provider's middleware. */
export interface DirectState {
  readonly context: DirectContext;
  readonly request: ProtocolRequest;
  /** The form, each parameter given once (set by formPost). */
  form: Record<string, string>;
  /** The client, authenticated (set by knownBasicClient in direct-client-auth.ts). */
  client: ProviderClient | undefined;
}

/** The form before formPost has read it. */
export const NO_FORM: Record<string, string> = Object.freeze({});

/**
 * A named step of a direct answer: lets the request on (undefined) or declines it with a reason, and
 * oidc-provider then answers it (and produces any error). Plain functions of the state, so that a
 * request allocates no closures; a stack trace names the step.
 */
export type Guard<S extends DirectState> = (state: S) => DeclineReason | undefined | Promise<DeclineReason | undefined>;

/**
 * A direct answer that failed after it wrote (a refresh token consumed): oidc-provider must not be
 * asked again (it would find the token used, and take it for a replay). The request is answered with
 * the error oidc-provider gives for a failure of its own.
 */
export class FailedAfterWrite extends Error {
  constructor(cause: unknown) {
    super('a direct answer failed after it wrote', { cause });
  }
}

/** What a direct answer comes to: the JSON body of a 200 (sent with DIRECT_ANSWER_HEADERS), or a decline. */
export type DirectOutcome = { body: Record<string, unknown>; declined?: undefined } | { body?: undefined; declined: DeclineReason };

/** Runs the guards in order; the first decline stops them. Synchronous guards cost no promise. */
export async function runGuards<S extends DirectState>(guards: readonly Guard<S>[], state: S): Promise<DeclineReason | undefined> {
  for (const guard of guards) {
    const result = guard(state);
    const reason = typeof result === 'object' ? await result : result;
    if (reason !== undefined) return reason;
  }
  return undefined;
}

/**
 * What both direct grants (client credentials, refresh) need of the token endpoint's configuration:
 * resource indicators on (every token for one resource server), and neither rich authorization
 * requests nor client attestation, whose rules they do not reproduce.
 */
export function reproducibleTokenEndpoint({ features }: ProviderConfiguration): boolean {
  return features.resourceIndicators.enabled && !features.richAuthorizationRequests.enabled && !features.attestClientAuth.enabled;
}

/** The provider's configuration is one the direct answer reproduces (checked once per provider). */
export function reproducibleConfiguration(state: DirectState): DeclineReason | undefined {
  return state.context.reproducible ? undefined : 'configuration';
}

// Headers that bring in CORS or client attestation handling: oidc-provider answers those requests.
const HANDLED_ELSEWHERE: [header: string, reason: DeclineReason][] = [
  ['origin', 'cors'],
  ['oauth-client-attestation', 'attestation'],
  ['oauth-client-attestation-pop', 'attestation'],
];

/**
 * A UTF-8 form post without CORS or attestation headers, nor a DPoP proof unless the direct answer
 * judges them, whose parameters are each given once.
 */
export function formPost(state: DirectState): DeclineReason | undefined {
  const { headers, form, utf8Form } = state.request;
  if (!utf8Form || !form) return 'content_type';
  for (const [header, reason] of HANDLED_ELSEWHERE) if (headers[header] !== undefined) return reason;
  if (headers.dpop !== undefined && !state.context.takesDpop) return 'dpop';
  for (const name in form) if (typeof form[name] !== 'string') return 'repeated_parameter';
  state.form = form as Record<string, string>;
  return undefined;
}

/**
 * The guards of a grant's `grant_type`: the request asks for this grant (else another answer, or
 * oidc-provider, is its), and the authenticated client may use it (oidc-provider's
 * allowedGrantTypeCheck). Made once per grant, at load.
 */
export function grantTypeGuards(grantType: string): { requested: Guard<DirectState>; allowed: Guard<DirectState> } {
  return {
    requested: ({ form }) => (form.grant_type === grantType ? undefined : 'other_grant_type'),
    allowed: ({ client }) => (client!.grantTypeAllowed(grantType) ? undefined : 'grant_type_not_allowed'),
  };
}

/** No parameter but those the direct answer takes (others, `resource` say, are oidc-provider's to handle). */
export function onlyKnownParameters(state: DirectState): DeclineReason | undefined {
  const { parameters } = state.context;
  for (const name in state.form) if (!parameters.has(name)) return 'unexpected_parameter';
  return undefined;
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
