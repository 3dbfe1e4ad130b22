import type { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/index.js';
import { ASYMMETRIC_SIGNING_ALGS, CLIENT_AUTH_METHODS, isTokenMode, RESPONSE_TYPES, TOKEN_MODES } from '../lib/enums.js';
import type { Keyring } from '../storage/keys.js';
import type { ClientStore } from '../storage/clients.js';
import type { UserStore } from '../storage/users.js';
import { createAdapterFactory } from '../tokens/adapter.js';
import type { LedgerManager } from '../tokens/ledger-manager.js';
import type { SealedRecords } from '../tokens/sealed-records.js';
import type { StatelessRefreshTokens } from '../tokens/stateless-refresh-tokens.js';
import { installTokenModes, tokenModeConfiguration, tokenModeOf } from './token-modes.js';
import { createFindAccount, signInPolicy } from './account.js';
import { createClientSecrets, installHashedClientSecrets } from './client-secrets.js';
import type { SecurityEvents } from '../config/security-events.js';
import { EXTERNAL_SIGNING_FEATURE, providerSigningKeys } from './signing-keys.js';
import { adjustFoundAccessTokens, installFirstSessionSave, installNoncedFormPost, recogniseScopes, replaceReplayDetection } from './internals/index.js';
import type { ReplayMarkStore } from '../storage/replay-marks.js';
import { pageNonceOf } from '../lib/page-nonce.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';
import { oneTimeMarks } from './one-time-marks.js';
import { installUnavailableAnswers, translatingAdapters, translatingUnavailable, UNAVAILABLE_PAGE } from './unavailable.js';
import { attachLedger } from './provider-ledger.js';
import { reportReplays } from './replay-events.js';
import type { Throttle } from '../tokens/throttle.js';
import { installUserCodeThrottle, UserCodesThrottled } from './user-code-throttle.js';
import { installIntrospectionTokenType, introspectionAllowedPolicy } from './introspection-policy.js';
import { CLIENT_POLICY_METADATA, checkClientPolicyMetadata, pkceRequired } from './client-policies.js';
import { resourceScopes } from './admin-rights.js';
import type { IssuanceCounter } from '../storage/issuance-counter.js';
import { mtlsFeature } from './mtls.js';
import { ACR_VALUES } from './second-factors.js';

/** Renders a page from views/ (supplied by the HTTP layer). */
export type RenderPage = (view: string, locals: Record<string, unknown>) => Promise<string>;

export interface ProviderDependencies {
  config: Config;
  keyring: Keyring;
  clients: ClientStore;
  users: UserStore;
  /** The ledger manager: every token read, single use and revocation. */
  ledger: LedgerManager;
  /** oidc-provider's other records (sessions, grants, interactions, ...). */
  records: SealedRecords;
  statelessRefreshTokens: StatelessRefreshTokens;
  /** Absent where no page is ever served (the CLI validating client metadata). */
  renderPage?: RenderPage;
  /** Told of requests refused because the database is unavailable (storage/unavailable.ts). */
  events?: EventEmitter;
  /** Device user_code guesses are throttled with these (absent in the CLI, which serves no page). */
  throttle?: Throttle;
  /** Failed client authentications and refusals at a bound are reported here; absent in the CLI. */
  security?: SecurityEvents;
  /** One-time marks of DPoP proofs and client assertions, shared by every replica (absent in the CLI, which serves no request). */
  replayMarks?: ReplayMarkStore;
  /** Counts stateless access tokens as they are issued (the admin statistics); absent in the CLI. */
  statelessIssued?: Pick<IssuanceCounter, 'count'>;
}

const noPages: RenderPage = () => Promise.reject(new Error('this provider serves no pages'));

export const STANDARD_SCOPES = ['openid', 'offline_access', 'profile', 'email'];

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * The scopes oidc-provider recognises: the standard ones (listed in discovery) and any other valid
 * RFC 6749 scope token, because a client may be granted whatever scope its metadata names.
 */
class RegisteredScopes extends Set<string> {
  override has(scope: string): boolean {
    return super.has(scope) || SCOPE_TOKEN.test(scope);
  }
}

type ClientLike = { clientId: string; scope?: string; token_mode?: string } & Record<string, unknown>;

/** A client may be granted any scope in its metadata; without `scope`, the standard ones. */
function scopesOf(client: ClientLike): string {
  return client.scope ?? STANDARD_SCOPES.join(' ');
}

/** oidc-provider's routes that people reach in a browser; every other one answers machines, in JSON. */
const PAGE_ROUTES = new Set(['authorization', 'resume', 'end_session', 'end_session_confirm', 'end_session_success', 'code_verification', 'device_resume']);

const SESSION_TTL = 14 * 24 * 3600;
const LONG_COOKIE = { signed: true, sameSite: 'lax' } as const;

function buildConfiguration(deps: ProviderDependencies): Configuration {
  const { config, keyring } = deps;
  const renderPage = deps.renderPage ?? noPages;
  const page = (ctx: KoaContextWithOIDC, view: string, locals: Record<string, unknown>) =>
    renderPage(view, locals).then((html) => {
      ctx.type = 'html';
      ctx.body = html;
    });

  return {
    adapter: translatingAdapters(createAdapterFactory({ ...deps, payloadKey: keyring.payloadKey, payloadKeys: keyring.payloadKeys })),
    ...tokenModeConfiguration(tokenModeDependencies(deps)),
    findAccount: createFindAccount(deps.users),
    jwks: { keys: providerSigningKeys(keyring.signingKeys) },
    cookies: {
      keys: keyring.cookieKeys,
      long: LONG_COOKIE,
      short: { signed: true, sameSite: 'lax' },
    },
    // acr and amr (RFC 8176) of the interaction's login result (oidc/second-factors.ts) in every ID token:
    // listed under `openid`, as oidc-provider puts them in an ID token only when its scopes' claims name them.
    acrValues: ACR_VALUES,
    claims: {
      openid: ['sub', 'acr', 'amr'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: STANDARD_SCOPES,
    clientAuthMethods: [...CLIENT_AUTH_METHODS],
    enabledJWA: {
      clientAuthSigningAlgValues: [...ASYMMETRIC_SIGNING_ALGS],
      requestObjectSigningAlgValues: [...ASYMMETRIC_SIGNING_ALGS],
      idTokenSigningAlgValues: [...ASYMMETRIC_SIGNING_ALGS],
      userinfoSigningAlgValues: [...ASYMMETRIC_SIGNING_ALGS],
      introspectionSigningAlgValues: [...ASYMMETRIC_SIGNING_ALGS],
      authorizationSigningAlgValues: [...ASYMMETRIC_SIGNING_ALGS],
    },
    extraClientMetadata: {
      properties: ['token_mode', ...CLIENT_POLICY_METADATA],
      validator(_ctx, key, value, metadata) {
        if (key === 'token_mode' && value !== undefined && !isTokenMode(value)) {
          throw new errors.InvalidClientMetadata(`token_mode must be one of ${TOKEN_MODES.join(', ')}`);
        }
        checkClientPolicyMetadata(key, value, metadata);
      },
    },
    pkce: { required: pkceRequired },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: signInPolicy() },
    responseTypes: [...RESPONSE_TYPES],
    rotateRefreshToken: true,
    ttl: {
      AccessToken: config.accessTokenTtl,
      ClientCredentials: config.accessTokenTtl,
      RefreshToken: config.refreshTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      Session: SESSION_TTL,
      Grant: config.refreshTokenTtl,
    },
    features: {
      devInteractions: { enabled: false },
      // DPoP (RFC 9449) for every grant; with DPOP_NONCES, proofs carry a nonce from the shared secret.
      dPoP: config.dpopNonces ? { enabled: true, nonceSecret: keyring.dpopNonceSecret, requireNonce: () => true } : { enabled: true },
      externalSigningSupport: EXTERNAL_SIGNING_FEATURE,
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: introspectionAllowedPolicy },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // RFC 8705: certificate-bound tokens and the tls client authentication methods (oidc/mtls.ts).
      mTLS: mtlsFeature(),
      // RFC 9126, on by default in oidc-provider; said here because REQUIRE_PAR and discovery depend on it.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: config.requirePar, allowUnregisteredRedirectUris: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => page(ctx, 'logout', { form, host: ctx.host }),
        postLogoutSuccessSource: (ctx) => page(ctx, 'message', { title: 'Signed out', message: 'You are signed out.' }),
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx, form, _out, err) => {
          if (isDatabaseUnavailable(err)) return page(ctx, 'error', UNAVAILABLE_PAGE);
          if (err instanceof UserCodesThrottled) ctx.set('retry-after', String(err.retryAfterSeconds));
          return page(ctx, 'device', {
            form: form.replace('</form>', '<button type="submit">Continue</button></form>'),
            error: err instanceof UserCodesThrottled ? err.pageMessage : err ? 'That code is not valid or has expired. Try again.' : undefined,
          });
        },
        userCodeConfirmSource: (ctx, form, client, _deviceInfo, userCode) =>
          page(ctx, 'device-confirm', {
            form: form.replace('</form>', '<button type="submit">Continue</button><button type="submit" name="abort" value="yes">Abort</button></form>'),
            clientName: client.clientName ?? client.clientId,
            userCode,
          }),
        successSource: (ctx) => page(ctx, 'message', { title: 'Device connected', message: 'You can return to your device.' }),
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.defaultAudience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => {
          const mode = tokenModeOf(client as unknown as ClientLike, config.tokenMode);
          // Scope `admin` belongs to the admin API's resource alone, for clients the operator gave it.
          const scope = resourceScopes(config.issuer, resource, scopesOf(client as unknown as ClientLike));
          if (scope === undefined) throw new errors.InvalidTarget('this client may not request the admin API');
          return {
            scope,
            audience: resource,
            accessTokenTTL: config.accessTokenTtl,
            accessTokenFormat: mode === 'reference' ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    clientBasedCORS(_ctx, origin, client) {
      return (client.redirectUris ?? []).some((uri) => URL.canParse(uri) && new URL(uri).origin === origin);
    },
    renderError: async (ctx, out, error) => {
      // oidc-provider renders an error as a page for whoever prefers HTML; only people's pages should.
      if (!PAGE_ROUTES.has(ctx.oidc?.route ?? '')) {
        ctx.type = 'json';
        ctx.body = out;
        return;
      }
      await page(
        ctx,
        'error',
        isDatabaseUnavailable(error) ? UNAVAILABLE_PAGE : { title: 'Something went wrong', error: out.error, description: out.error_description },
      );
    },
  };
}

function tokenModeDependencies(deps: ProviderDependencies) {
  return {
    config: deps.config,
    ledger: deps.ledger,
    statelessRefreshTokens: deps.statelessRefreshTokens,
    signingKeys: deps.keyring.signingKeys,
    security: deps.security,
    statelessIssued: deps.statelessIssued,
  };
}

export function createProvider(deps: ProviderDependencies): Provider {
  deps = translatingStores(deps);
  const provider = new Provider(deps.config.issuer, buildConfiguration(deps));
  provider.proxy = true;
  recogniseScopes(provider, RegisteredScopes);
  attachLedger(provider, deps.ledger);
  installUnavailableAnswers(provider, deps.events);
  // A stored secret or a throttle count that cannot be read is a 503 with Retry-After, as every other read.
  const secrets = translatingUnavailable(createClientSecrets(deps.clients, { throttle: deps.throttle, security: deps.security }));
  installHashedClientSecrets(provider, secrets, deps.security);
  installTokenModes(provider, tokenModeDependencies(deps));
  installIssuerAudienceForUserinfo(provider, deps.config);
  installJsonNotFound(provider);
  installIntrospectionTokenType(provider);
  installFirstSessionSave(provider, { sessionTtl: SESSION_TTL, cookie: LONG_COOKIE });
  if (deps.throttle && deps.security) installUserCodeThrottle(provider, { throttle: deps.throttle, security: deps.security });
  if (deps.security) reportReplays(provider, deps.security);
  installNoncedFormPost(provider, (res) => pageNonceOf(res as ServerResponse));
  // A proof replayed on another replica is refused as on this one: one atomic insert-if-absent.
  if (deps.replayMarks) replaceReplayDetection(provider, oneTimeMarks(translatingUnavailable(deps.replayMarks)));
  return provider;
}

/** The stores as the provider uses them: a database outage is a 503 temporarily_unavailable there, not a 500. */
function translatingStores(deps: ProviderDependencies): ProviderDependencies {
  const { records, clients, users, ledger } = deps;
  return {
    ...deps,
    records: translatingUnavailable(records),
    clients: translatingUnavailable(clients),
    users: translatingUnavailable(users),
    ledger: translatingUnavailable(ledger),
  };
}

/** A path or method oidc-provider does not serve answers in the OAuth error shape, not Koa's text "Not Found". */
function installJsonNotFound(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status === 404 && ctx.body == null) {
      ctx.body = { error: 'invalid_request', error_description: `unrecognized route or unsupported method: ${ctx.method} ${ctx.path}` };
      ctx.status = 404;
    }
  });
}

/**
 * Tokens requested without a resource are for the issuer itself (DEFAULT_AUDIENCE). oidc-provider
 * keeps audience-bound tokens away from userinfo; the issuer's own userinfo is part of that audience.
 */
function installIssuerAudienceForUserinfo(provider: Provider, config: Config): void {
  const own = new Set([config.issuer, config.defaultAudience]);
  adjustFoundAccessTokens<{ aud?: string | string[] }>(provider, (token) => {
    if (Provider.ctx?.oidc?.route !== 'userinfo') return;
    const aud = Array.isArray(token.aud) ? token.aud : token.aud ? [token.aud] : [];
    if (aud.length > 0 && aud.every((a) => own.has(a))) token.aud = undefined;
  });
}
