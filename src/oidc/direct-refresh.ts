import { errors } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { ClientSecrets } from './client-secrets.js';
import { knownBasicClient } from './direct-client-auth.js';
import {
  FailedAfterWrite,
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
// Internals: the configuration oidc-provider uses, its checks of findAccount's and
// getResourceServerInfo's results, and its filter of requested claims.
import { filterClaims, providerConfiguration, validAccount, validResourceServer, type ProviderClient, type ProviderConfiguration } from './internals/index.js';
import type { ProtocolRequest } from './protocol-request.js';

const GRANT_TYPE = 'refresh_token';
const PARAMETERS = new Set(['grant_type', 'refresh_token']);
const GRANT_TYPE_GUARDS = grantTypeGuards(GRANT_TYPE);

/** oidc-provider's RefreshToken, as far as its refresh grant handler reads and writes it. */
interface RefreshToken {
  clientId: string;
  isExpired: boolean;
  consumed?: unknown;
  accountId: string;
  grantId: string;
  acr?: string;
  amr?: string[];
  authTime?: number;
  claims?: unknown;
  expiresWithSession?: boolean;
  iiat?: number;
  gty?: string;
  nonce?: string;
  resource?: unknown;
  resourceIndicators: Set<string>;
  rotations?: number;
  scope?: string;
  scopes: Set<string>;
  sessionUid?: string;
  sid?: string;
  rar?: unknown;
  'x5t#S256'?: string;
  jkt?: string;
  attestationJkt?: string;
  consume(): Promise<void>;
  save(): Promise<string>;
}
interface Grant {
  accountId: string;
  clientId: string;
  isExpired: boolean;
  getOIDCScopeFiltered(scopes: Set<string>): string;
  getResourceScopeFiltered(resource: string, scopes: string[]): string;
  getRejectedOIDCClaims(): string[];
}
interface Account {
  accountId: string;
  claims(use: 'id_token', scope: string, claims: Record<string, unknown>, rejected: string[]): Promise<Record<string, unknown>> | Record<string, unknown>;
}
interface AccessToken {
  gty?: string;
  aud?: unknown;
  scope?: string;
  resourceServer: { scopes: Set<string> };
  expiration: number;
  tokenType: string;
  save(): Promise<string>;
}
interface IdToken {
  scope: string;
  mask: Record<string, unknown>;
  rejected: string[];
  set(claim: string, value: unknown): void;
  issue(options: { use: 'idtoken' }): Promise<string>;
}
type ResourceServerInfo = { scope: string };
type Models = {
  RefreshToken: (new (
    fields: Record<string, unknown>,
  ) => RefreshToken) & { find(value: string, options: { ignoreExpiration: true }): Promise<RefreshToken | undefined> };
  Grant: { find(id: string, options: { ignoreExpiration: true }): Promise<Grant | undefined> };
  AccessToken: new (fields: Record<string, unknown>) => AccessToken;
  ResourceServer: new (identifier: string, info: ResourceServerInfo) => { scopes: Set<string> };
  IdToken: new (claims: Record<string, unknown>, options: { client: ProviderClient }) => IdToken;
};

interface RefreshContext extends DirectContext {
  configuration: ProviderConfiguration;
  models: Models;
}

interface RefreshState extends DirectState {
  readonly context: RefreshContext;
  /** What the guards found (set by usableToken, liveGrant, knownAccount and grantedResource: the token's resource's server). */
  token: RefreshToken | undefined;
  grant: Grant | undefined;
  account: Account | undefined;
  resourceServer: ResourceServerInfo | undefined;
}

/** oidc-provider's `presence(ctx, 'refresh_token')`. */
function presentToken({ form }: RefreshState): DeclineReason | undefined {
  return form.refresh_token ? undefined : 'missing_token';
}

/** A client whose tokens must be certificate- or DPoP-bound is oidc-provider's (checkDpopRequired, its certificate check). */
function unboundClient({ client }: RefreshState): DeclineReason | undefined {
  return client!.tlsClientCertificateBoundAccessTokens || client!.dpopBoundAccessTokens ? 'sender_constrained' : undefined;
}

/**
 * The refresh token, found as the grant handler finds it, this client's, unexpired and not used yet
 * (a used one is oidc-provider's: it takes it for a replay and revokes the grant), unbound and
 * without authorization details.
 */
async function usableToken(state: RefreshState): Promise<DeclineReason | undefined> {
  const token = await state.context.models.RefreshToken.find(state.form.refresh_token!, { ignoreExpiration: true });
  if (!token || token.clientId !== state.client!.clientId || token.isExpired || token.consumed) return 'token_unusable';
  if (token['x5t#S256'] || token.jkt || token.attestationJkt) return 'sender_constrained';
  if (token.rar !== undefined) return 'authorization_details';
  state.token = token;
  return undefined;
}

/** validateGrant: the grant exists, is unexpired and is this client's. */
async function liveGrant(state: RefreshState): Promise<DeclineReason | undefined> {
  const grant = await state.context.models.Grant.find(state.token!.grantId, { ignoreExpiration: true });
  if (!grant || grant.isExpired || grant.clientId !== state.client!.clientId) return 'token_unusable';
  state.grant = grant;
  return undefined;
}

/** validateAccount and checkAccountMismatch: the account exists and is the grant's. */
async function knownAccount(state: RefreshState): Promise<DeclineReason | undefined> {
  const { token, grant, context } = state;
  const account = validAccount(await context.configuration.findAccount(undefined, token!.accountId, token!)) as Account | undefined;
  if (!account || token!.accountId !== grant!.accountId) return 'token_unusable';
  state.account = account;
  return undefined;
}

/**
 * resolveResource without a `resource` parameter: the one resource the token was granted for, when
 * useGrantedResource says so; and its resource server as getResourceServerInfo describes it, asked
 * before anything is written (oidc-provider asks after, and refuses then: such a request is its own).
 */
async function grantedResource(state: RefreshState): Promise<DeclineReason | undefined> {
  const token = state.token!;
  const { resourceIndicators } = state.context.configuration.features;
  if (typeof token.resource !== 'string' || !token.resourceIndicators.has(token.resource)) return 'granted_resource';
  if ((await resourceIndicators.useGrantedResource(undefined, token)) !== true) return 'granted_resource';
  try {
    state.resourceServer = validResourceServer(await resourceIndicators.getResourceServerInfo(undefined, token.resource, state.client!)) as ResourceServerInfo;
  } catch {
    return 'granted_resource';
  }
  return undefined;
}

/** In order, as oidc-provider's token action and refresh grant handler run their checks. */
const GUARDS: readonly Guard<RefreshState>[] = [
  reproducibleConfiguration,
  formPost,
  GRANT_TYPE_GUARDS.requested,
  onlyKnownParameters,
  knownBasicClient,
  GRANT_TYPE_GUARDS.allowed,
  presentToken,
  unboundClient,
  usableToken,
  liveGrant,
  knownAccount,
  grantedResource,
];

/** A refresh token's one use; false when another use got there first (the adapter's InvalidGrant), having written nothing. */
async function consumed(token: RefreshToken): Promise<boolean> {
  try {
    await token.consume();
    return true;
  } catch (error) {
    if (error instanceof errors.InvalidGrant) return false;
    throw error;
  }
}

/** issueIdToken (helpers/grant_common.js) for a refresh: the claims of the token's scopes, without a request context. */
function issueIdToken(state: RefreshState, source: RefreshToken, at: AccessToken, scopes: Set<string>): Promise<string> | undefined {
  if (!scopes.has('openid')) return undefined;
  const { context, grant, account, client } = state;
  const { conformIdTokenClaims, features } = context.configuration;
  return (async () => {
    const claims = filterClaims(source.claims, 'id_token', grant!);
    const rejected = grant!.getRejectedOIDCClaims();
    // { ...accountClaims, sub, acr, amr, auth_time }, built by assignment (lib/object-shapes.ts).
    const available: Record<string, unknown> = Object.assign({}, await account!.claims('id_token', [...scopes].join(' '), claims, rejected));
    available.sub = account!.accountId;
    available.acr = source.acr;
    available.amr = source.amr;
    available.auth_time = source.authTime;
    const token = new context.models.IdToken(available, { client: client! });
    token.scope = conformIdTokenClaims && features.userinfo.enabled && !at.aud ? 'openid' : grant!.getOIDCScopeFiltered(scopes);
    token.mask = claims;
    token.rejected = rejected;
    token.set('nonce', source.nonce);
    token.set('sid', source.sid);
    return token.issue({ use: 'idtoken' });
  })();
}

/** The grant handler's rotation and issuance, step for step, once the old token is consumed; answered as its buildTokenResponse answers. */
async function issueTokens(state: RefreshState): Promise<Record<string, unknown>> {
  const { context, client, account, grant } = state;
  const { RefreshToken, AccessToken, ResourceServer } = context.models;
  const used = state.token!;
  // A string that the token was granted for (grantedResource).
  const resource = used.resource as string;
  const token = new RefreshToken({
    accountId: used.accountId,
    acr: used.acr,
    amr: used.amr,
    authTime: used.authTime,
    claims: used.claims,
    client,
    expiresWithSession: used.expiresWithSession,
    iiat: used.iiat,
    grantId: used.grantId,
    gty: used.gty,
    nonce: used.nonce,
    resource: used.resource,
    rotations: typeof used.rotations === 'number' ? used.rotations + 1 : 1,
    scope: used.scope,
    sessionUid: used.sessionUid,
    sid: used.sid,
    rar: used.rar,
    'x5t#S256': used['x5t#S256'],
    jkt: used.jkt,
    attestationJkt: used.attestationJkt,
  });
  if (token.gty && !token.gty.endsWith(GRANT_TYPE)) token.gty = `${token.gty} ${GRANT_TYPE}`;

  // createAccessToken, then the resource server's scopes (resolveResource's single granted resource).
  const at = new AccessToken({
    accountId: account!.accountId,
    client,
    expiresWithSession: token.expiresWithSession,
    grantId: token.grantId,
    gty: token.gty,
    sessionUid: token.sessionUid,
    sid: token.sid,
  });
  if (at.gty && !at.gty.endsWith(GRANT_TYPE)) at.gty = `${at.gty} ${GRANT_TYPE}`;
  const scopes = token.scopes;
  at.resourceServer = new ResourceServer(resource, state.resourceServer!);
  at.scope = grant!.getResourceScopeFiltered(resource, [...scopes].filter(Set.prototype.has.bind(at.resourceServer.scopes)));
  // oidc-provider saves one, then the other, then signs the ID token; none needs another's result, so
  // here the two writes share one commit and the signature (on libuv's pool) runs meanwhile.
  const [refreshToken, accessToken, idToken] = await Promise.all([token.save(), at.save(), issueIdToken(state, token, at, scopes)]);

  // buildTokenResponse: these members in this order, those undefined left out.
  const body: Record<string, unknown> = { access_token: accessToken, expires_in: at.expiration };
  if (idToken !== undefined) body.id_token = idToken;
  body.refresh_token = refreshToken;
  const scope = token.scope ? at.scope : at.scope || undefined;
  if (scope !== undefined) body.scope = scope;
  body.token_type = at.tokenType;
  return body;
}

/**
 * The refresh token grant for a client authenticating with a client secret it used before, answered
 * without oidc-provider's Koa stack, which costs a refresh about as much as its own work.
 *
 * The tokens are oidc-provider's own: its RefreshToken, Grant, AccessToken and IdToken models find,
 * consume, rotate, issue and save them (the ledger entries, the JWTs, the events), and the rules and
 * response are those of its refresh grant handler, step for step. A request this path does not cover
 * is declined by one of its guards, with the reason, before anything is written, and goes to
 * oidc-provider, which also produces every error: a `scope` or `resource` parameter, other client
 * authentication methods, a secret not verified in the last few minutes, DPoP proofs,
 * certificate- or DPoP-bound clients and tokens, a token not found, another client's, expired or
 * already used (reuse revokes the grant there), a grant or account gone, a token with authorization
 * details or without one granted resource. Once the old token is consumed, a failure is answered as
 * oidc-provider answers its own (FailedAfterWrite), never handed to it. The configuration functions it
 * calls (findAccount, useGrantedResource, resource server info, TTLs, claims) are Tally's, which read
 * no request context.
 */
export function createDirectRefresh(provider: Provider, secrets: ClientSecrets) {
  const configuration = providerConfiguration(provider);
  const { features } = configuration;
  const reproducible =
    configuration.grantTypes.has(GRANT_TYPE) &&
    configuration.rotateRefreshToken === true &&
    reproducibleTokenEndpoint(configuration) &&
    !features.encryption.enabled &&
    ![...configuration.subjectTypes].includes('pairwise');
  const models = provider as unknown as Models;
  const context: RefreshContext = { provider, secrets, reproducible, parameters: PARAMETERS, configuration, models };

  return {
    async answer(request: ProtocolRequest): Promise<DirectOutcome> {
      const state: RefreshState = {
        context,
        request,
        form: NO_FORM,
        client: undefined,
        token: undefined,
        grant: undefined,
        account: undefined,
        resourceServer: undefined,
      };
      const declined = await runGuards(GUARDS, state);
      if (declined) return { declined };
      // Another use got there first: nothing written here, so oidc-provider answers (and judges the reuse).
      if (!(await consumed(state.token!))) return { declined: 'token_unusable' };
      try {
        return { body: await issueTokens(state) };
      } catch (error) {
        throw new FailedAfterWrite(error);
      }
    },
  };
}

export type DirectRefresh = ReturnType<typeof createDirectRefresh>;
