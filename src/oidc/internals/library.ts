import type Provider from 'oidc-provider';
import { exitUnlessSupportedVersion } from './version.js';

// Before anything of oidc-provider's lib/ is loaded: another version may lack these files altogether.
exitUnlessSupportedVersion();

const [weakCache, tokenFind, configurationResult, validScope, clientAttributes, challenge, requestStore, claimsFilter] = await Promise.all([
  import('oidc-provider/lib/helpers/weak_cache.js'),
  import('oidc-provider/lib/helpers/token_find.js'),
  import('oidc-provider/lib/helpers/configuration_result.js'),
  import('oidc-provider/lib/helpers/is_valid_scope.js'),
  import('oidc-provider/lib/consts/client_attributes.js'),
  import('oidc-provider/lib/helpers/challenge.js'),
  import('oidc-provider/lib/helpers/als.js'),
  import('oidc-provider/lib/helpers/filter_claims.js'),
]);

/** oidc-provider's Client, as far as Tally reads it past the documented API. */
export interface ProviderClient {
  clientId: string;
  clientAuthMethod: string;
  clientSecret?: string;
  scope?: string;
  dpopBoundAccessTokens?: boolean;
  tlsClientCertificateBoundAccessTokens?: boolean;
  grantTypeAllowed(grantType: string): boolean;
  /** Throws once the client's secret has expired (`client_secret_expires_at`). */
  checkClientSecretExpiration(message: string): void;
}

/** The configuration oidc-provider resolved from Tally's (defaults filled in), as far as Tally reads it. */
export interface ProviderConfiguration {
  scopes: Set<string>;
  /** The algorithms a DPoP proof may be signed with. */
  dPoPSigningAlgValues: string[];
  routes: { token: string };
  grantTypes: Set<string>;
  subjectTypes: Iterable<string>;
  rotateRefreshToken: unknown;
  conformIdTokenClaims: boolean;
  findAccount(ctx: undefined, accountId: string, token: object): Promise<unknown> | unknown;
  renderError(ctx: unknown, out: object, error: unknown): Promise<void>;
  features: {
    introspection: { enabled: boolean; allowedPolicy: unknown };
    jwtIntrospection: { enabled: boolean };
    attestClientAuth: { enabled: boolean };
    dPoP: { enabled: boolean; nonceSecret?: unknown; allowReplay?: boolean };
    clientCredentials: { enabled: boolean };
    richAuthorizationRequests: { enabled: boolean };
    encryption: { enabled: boolean };
    userinfo: { enabled: boolean };
    resourceIndicators: {
      enabled: boolean;
      defaultResource(ctx: undefined, client: ProviderClient): Promise<unknown> | unknown;
      useGrantedResource(ctx: undefined, token: object): Promise<unknown> | unknown;
      getResourceServerInfo(ctx: undefined, resource: string, client: ProviderClient): Promise<unknown> | unknown;
    };
  };
}

/** The only handle on the configuration oidc-provider actually uses (it copies and completes Tally's). */
export function providerConfiguration(provider: Provider): ProviderConfiguration {
  return weakCache.default(provider)!.configuration as ProviderConfiguration;
}

/**
 * The AsyncLocalStorage behind `Provider.ctx` (helpers/als.js), which each oidc-provider request
 * enters. Node 20 keeps a store across awaits with promise hooks that, once a store has been entered,
 * run for every promise of the process, Tally's direct answers included, until `disable()` is called;
 * the next request's `run` enables them again (oidc/provider-holder.ts).
 */
export const providerRequestStore: { disable(): void } = requestStore.default;

/** oidc-provider's introspection lookup (helpers/token_find.js), so that a token is found exactly as it finds it. */
export function findToken(provider: Provider, value: string, hint: string | undefined): Promise<unknown> {
  return tokenFind.findToken(provider, value, hint);
}

/** oidc-provider's check of what getResourceServerInfo returns; throws on a bad value. */
export const validResourceServer: (info: unknown) => unknown = configurationResult.resourceServer;

/** oidc-provider's check of what findAccount returns (undefined, or an account); throws on a bad value. */
export const validAccount: (account: unknown) => unknown = configurationResult.account;

/** oidc-provider's filter of requested claims (the `claims` parameter) by what the grant allows (helpers/filter_claims.js). */
export const filterClaims: (source: unknown, target: 'id_token' | 'userinfo', grant: object) => Record<string, unknown> = claimsFilter.default;

/** oidc-provider's scope syntax check (RFC 6749 §3.3): undefined or space-separated scope tokens. */
export const isValidScope: (scope: unknown) => boolean = validScope.default;

/** oidc-provider's test for a character outside VSCHAR in client credentials (RFC 6749 Appendix A). */
export const NO_VSCHAR: RegExp = clientAttributes.noVSCHAR;

/**
 * The most oidc-provider reads of a request body (`LIMIT` in shared/selective_body.js, not exported):
 * a larger one is a vague 400 there. Tally reads protocol bodies under the same limit and refuses a
 * larger one with a 413 before oidc-provider sees it (http/server.ts).
 */
export const PROVIDER_BODY_LIMIT = 56 * 1024;

/**
 * How far a DPoP proof's `iat` may be from now, in seconds, without a nonce (helpers/validate_dpop.js;
 * CHALLENGE_OK_WINDOW in helpers/challenge.js).
 */
export const DPOP_IAT_WINDOW: number = challenge.CHALLENGE_OK_WINDOW;

type ReplayDetection = { unique(iss: string, jti: string, exp: number, signedAt: number): Promise<boolean> };

/**
 * oidc-provider's replay check of a DPoP proof at the token endpoint (helpers/validate_dpop.js
 * `checkDpopReplay`): the first use of `jti` by this client answers true. The same call, so the same
 * store and key (Tally's replacement of `ReplayDetection.unique`, patches.ts, which reads the proof's
 * `iat` from oidc-provider's request and is given it here): a proof used on one path is refused on
 * the other.
 */
export function markDpopProofOnce(provider: Provider, clientId: string, jti: string, iat: number): Promise<boolean> {
  const ReplayDetection = provider.ReplayDetection as unknown as ReplayDetection;
  return ReplayDetection.unique(clientId, jti, Math.floor(Date.now() / 1000) + DPOP_IAT_WINDOW, iat);
}

type ClientModel = { adapter: { find(id: string): Promise<object | undefined> }; find(id: string): Promise<ProviderClient | undefined> };
/** Per provider: the Client oidc-provider built from each metadata object its client adapter answered. */
const clientsByMetadata = new WeakMap<Provider, WeakMap<object, ProviderClient>>();

/**
 * A registered client as oidc-provider's `Client.find` answers it, without that method's JSON
 * serialisation and SHA-256 of the whole metadata on every call (its cache key): while the adapter
 * answers the very same metadata object (Tally's does, for as long as the client store keeps its copy:
 * tokens/adapter.ts), the Client built from it is answered again. A changed client is a new object,
 * so a new Client. Static clients (none in Tally) are found as oidc-provider finds them; an id the
 * adapter does not know answers undefined (the direct answers then leave the request to oidc-provider).
 */
export async function findClient(provider: Provider, id: string): Promise<ProviderClient | undefined> {
  const Client = provider.Client as unknown as ClientModel;
  if (!id || weakCache.default(provider)?.staticClients?.has(id)) return Client.find(id);
  const metadata = await Client.adapter.find(id);
  if (!metadata) return undefined;
  let built = clientsByMetadata.get(provider);
  if (!built) clientsByMetadata.set(provider, (built = new WeakMap()));
  let client = built.get(metadata);
  if (!client) {
    client = await Client.find(id);
    if (client) built.set(metadata, client);
  }
  return client;
}
