import type Provider from 'oidc-provider';
import type { ClientSecrets } from './client-secrets.js';
import { knownBasicClient } from './direct-client-auth.js';
import { createDpopProofs, type DpopProofs } from './dpop-proofs.js';
import {
  formPost,
  grantTypeGuards,
  NO_FORM,
  onlyKnownParameters,
  reproducibleConfiguration,
  reproducibleTokenEndpoint,
  runGuards,
  type DeclineReason,
  type DirectContext,
  type DirectOutcome,
  type DirectState,
  type Guard,
} from './direct-guards.js';
// Internals: the configuration oidc-provider uses, its check of a resource server's description, its scope syntax check and
// its DPoP proof replay check and iat window.
import {
  DPOP_IAT_WINDOW,
  isValidScope,
  markDpopProofOnce,
  providerConfiguration,
  validResourceServer,
  type ProviderClient,
  type ProviderConfiguration,
} from './internals/index.js';
import type { ProtocolRequest } from './protocol-request.js';

const PARAMETERS = new Set(['grant_type', 'scope']);
const GRANT_TYPE_GUARDS = grantTypeGuards('client_credentials');
const NO_SCOPES: ReadonlySet<string> = new Set();

type ResourceServerInfo = { scope: string };
type ClientCredentialsToken = {
  resourceServer: object;
  scope?: string;
  expiration: number;
  tokenType: string;
  setThumbprint(kind: 'jkt', thumbprint: string): void;
  save(): Promise<string>;
};
type Models = {
  ClientCredentials: new (fields: { client: ProviderClient; scope?: string | undefined }) => ClientCredentialsToken;
  ResourceServer: new (identifier: string, info: ResourceServerInfo) => { scope: string };
};

interface ClientCredentialsContext extends DirectContext {
  configuration: ProviderConfiguration;
  /** DPoP proofs judged as oidc-provider judges them (when takesDpop). */
  proofs: DpopProofs | undefined;
  /** oidc-provider's `features.dPoP.allowReplay`: no replay check. */
  allowReplay: boolean;
}

interface ClientCredentialsState extends DirectState {
  readonly context: ClientCredentialsContext;
  /** The scopes asked for (set by validScope). */
  requested: ReadonlySet<string>;
  /** The default resource, an absolute URI without a fragment (set by defaultResource). */
  resource: string;
  /** The DPoP proof's key thumbprint and jti, when the request has one (set by validProof). */
  proof: { thumbprint: string; jti: string; iat: number } | undefined;
}

function validScope(state: ClientCredentialsState): DeclineReason | undefined {
  if (!isValidScope(state.form.scope)) return 'scope_syntax';
  state.requested = new Set(state.form.scope?.split(' '));
  return undefined;
}

/**
 * A client whose tokens must be certificate-bound (mTLS), or DPoP-bound and without a proof, is
 * oidc-provider's to serve (and to refuse: checkDpopRequired, checkMtlsCert).
 */
function unboundTokens({ client, request }: ClientCredentialsState): DeclineReason | undefined {
  if (client!.tlsClientCertificateBoundAccessTokens) return 'sender_constrained';
  return client!.dpopBoundAccessTokens && request.headers.dpop === undefined ? 'sender_constrained' : undefined;
}

/** oidc-provider's validateClientScope: a known scope outside the client's `scope` is refused. */
function allowedScopes({ client, requested, context }: ClientCredentialsState): DeclineReason | undefined {
  if (!client!.scope) return undefined;
  const allowList = new Set(client!.scope.split(' '));
  for (const scope of requested) if (context.configuration.scopes.has(scope) && !allowList.has(scope)) return 'scope_not_allowed';
  return undefined;
}

/** Without a `resource` parameter, the default resource: one absolute URI without a fragment. */
async function defaultResource(state: ClientCredentialsState): Promise<DeclineReason | undefined> {
  const resource = await state.context.configuration.features.resourceIndicators.defaultResource(undefined, state.client!);
  if (typeof resource !== 'string') return 'default_resource';
  const href = URL.parse(resource)?.href;
  if (!href || href.includes('#')) return 'default_resource';
  state.resource = resource;
  return undefined;
}

const PROOF_DECLINES = { unusual: 'dpop_unusual', nonce: 'dpop_nonce', invalid: 'dpop_invalid' } as const;

/** A DPoP proof, if the request has one, that oidc-provider would accept (dpop-proofs.ts); sets `state.proof`. */
function validProof(state: ClientCredentialsState): DeclineReason | undefined {
  const proof = state.request.headers.dpop;
  if (proof === undefined) return undefined;
  const outcome = state.context.proofs!.check(proof, 'POST');
  if (outcome.declined) return PROOF_DECLINES[outcome.declined];
  state.proof = outcome;
  return undefined;
}

/**
 * The proof's first use, marked where oidc-provider marks it (applyDpopBinding → checkDpopReplay,
 * the same call): the last guard, so that no request whose proof is marked is declined for another
 * reason. A replayed proof is oidc-provider's to refuse, which finds the same mark.
 */
async function firstUseOfProof({ proof, client, context }: ClientCredentialsState): Promise<DeclineReason | undefined> {
  if (!proof || context.allowReplay) return undefined;
  return (await markDpopProofOnce(context.provider, client!.clientId, proof.jti, proof.iat)) ? undefined : 'dpop_replayed';
}

/** In order, as oidc-provider's token action and client credentials grant handler run their checks. */
const GUARDS: readonly Guard<ClientCredentialsState>[] = [
  reproducibleConfiguration,
  formPost,
  GRANT_TYPE_GUARDS.requested,
  onlyKnownParameters,
  validScope,
  knownBasicClient,
  GRANT_TYPE_GUARDS.allowed,
  unboundTokens,
  allowedScopes,
  defaultResource,
  validProof,
  firstUseOfProof,
];

/** Issues the token as oidc-provider's grant handler does, and answers as its buildTokenResponse does. */
async function issueToken({ context, client, requested, resource, proof }: ClientCredentialsState): Promise<Record<string, unknown>> {
  const { resourceIndicators } = context.configuration.features;
  const models = context.provider as unknown as Models;
  const info = validResourceServer(await resourceIndicators.getResourceServerInfo(undefined, resource, client!)) as ResourceServerInfo;
  const resourceServer = new models.ResourceServer(resource, info);

  const scopes = [...requested];
  const token = new models.ClientCredentials({ client: client!, scope: scopes.join(' ') || undefined });
  token.resourceServer = resourceServer;
  const served = new Set(resourceServer.scope.split(' '));
  token.scope = scopes.filter((scope) => served.has(scope)).join(' ') || undefined;
  // applyDpopBinding: the token is bound to the proof's key (`cnf.jkt`; token_type DPoP).
  if (proof) token.setThumbprint('jkt', proof.thumbprint);
  const value = await token.save();

  // oidc-provider's buildTokenResponse: these members in this order, an empty scope left out.
  const body: Record<string, unknown> = { access_token: value, expires_in: token.expiration };
  if (token.scope) body.scope = token.scope;
  body.token_type = token.tokenType;
  return body;
}

/**
 * The client credentials grant for a client authenticating with a client secret it used before,
 * answered without oidc-provider's Koa stack, which costs more than issuing the token.
 *
 * The token is oidc-provider's own: its ClientCredentials model, given the resource server its
 * resource indicators configuration resolves, issues and saves it (the ledger entry, the JWT, the
 * events), and the scope rules and response are those of its grant handler, step for step. A request
 * this path does not cover is declined by one of its guards, with the reason, and goes to
 * oidc-provider, which also produces every error: a `resource` or `authorization_details` parameter,
 * other client authentication methods, a secret not verified in the last few minutes,
 * certificate-bound clients, CORS, attestation, a scope the client may not have, repeated or
 * unexpected parameters, a DPoP proof it does not judge as oidc-provider would (server nonces
 * configured, a `nonce` claim, another algorithm or shape), or one oidc-provider refuses. A DPoP
 * proof it accepts binds the token to its key, after the same replay check as oidc-provider's. The configuration functions it calls (default resource, resource server
 * info, token TTLs and claims) are Tally's, which read no request context.
 */
export function createDirectClientCredentials(provider: Provider, secrets: ClientSecrets) {
  const configuration = providerConfiguration(provider);
  const { features } = configuration;
  const reproducible = features.clientCredentials.enabled && configuration.grantTypes.has('client_credentials') && reproducibleTokenEndpoint(configuration);
  // Without a nonce secret oidc-provider neither asks for nor accepts nonces (nor sends DPoP-Nonce),
  // which the direct answer reproduces; with one (DPOP_NONCES), proofs are oidc-provider's.
  const takesDpop = features.dPoP.enabled && features.dPoP.nonceSecret === undefined;
  const proofs = takesDpop
    ? createDpopProofs({
        algorithms: configuration.dPoPSigningAlgValues,
        // oidc-provider's urlFor('token') from the issuer's host and protocol (http/forwarded.ts), at the root.
        endpoint: new URL(configuration.routes.token, provider.issuer).href,
        iatWindow: DPOP_IAT_WINDOW,
      })
    : undefined;
  const allowReplay = features.dPoP.allowReplay === true;
  const context: ClientCredentialsContext = { provider, secrets, reproducible, parameters: PARAMETERS, configuration, takesDpop, proofs, allowReplay };

  return {
    async answer(request: ProtocolRequest): Promise<DirectOutcome> {
      const state: ClientCredentialsState = {
        context,
        request,
        form: NO_FORM,
        client: undefined,
        requested: NO_SCOPES,
        resource: '',
        proof: undefined,
      };
      const declined = await runGuards(GUARDS, state);
      return declined ? { declined } : { body: await issueToken(state) };
    },
  };
}

export type DirectClientCredentials = ReturnType<typeof createDirectClientCredentials>;
