import { createLocalJWKSet, decodeJwt, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { SecurityEvents } from '../config/security-events.js';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config, TokenMode } from '../config/index.js';
import { isTokenMode } from '../lib/enums.js';
import { sha256, timeOrderedUuid } from '../lib/crypto.js';
import { cheapToSpread } from '../lib/object-shapes.js';
import type { LedgerManager } from '../tokens/ledger-manager.js';
import type { StatelessRefreshTokens } from '../tokens/stateless-refresh-tokens.js';
import { isStatelessJti, newReferenceId, newStatelessJti } from '../tokens/token-ids.js';
import { bindingOf, entryBinding, type TokenBinding } from '../tokens/binding.js';
import { interceptAccessTokenFind, replaceTokenIds, sealRefreshTokenValues, type TokenInstance } from './internals/index.js';
import { looksLikeJwt, unmarkJwt } from './jwt-mark.js';
import { attachAccessTokenVerifier, createAccessTokenVerifier } from './access-token-jwts.js';

/** jose's verdicts that mean a JWT was not signed by any key of this server (not expired, not merely malformed). */
const FORGERY_CODES = new Set([
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

/** The `iss` a JWT claims, unverified; undefined when it does not parse. */
function claimedIssuer(jwt: string): unknown {
  try {
    return decodeJwt(jwt).iss;
  } catch {
    return undefined;
  }
}

export interface TokenModeDependencies {
  /** Forged tokens are reported here (absent in the CLI). */
  security?: SecurityEvents | undefined;
  config: Config;
  ledger: LedgerManager;
  statelessRefreshTokens: StatelessRefreshTokens;
  signingKeys: JWK[];
  /** Hears each stateless access token issued (the admin statistics: they are written nowhere). */
  statelessIssued?: { count(): void } | undefined;
}

type ClientLike = { clientId: string; token_mode?: unknown } | undefined;

export function tokenModeOf(client: ClientLike, fallback: TokenMode): TokenMode {
  const mode = client?.token_mode;
  return isTokenMode(mode) ? mode : fallback;
}

/**
 * Token ids carry their mode (see tokens/token-ids.ts): a stateless id for a stateless client's
 * refresh tokens and JWT access tokens, a reference id for everything else.
 */
function installTokenIds(provider: Provider, config: Config) {
  replaceTokenIds(provider, (token) => {
    const isToken = token.kind === 'AccessToken' || token.kind === 'ClientCredentials' || token.kind === 'RefreshToken';
    const stateless = isToken && tokenModeOf(token.client, config.tokenMode) === 'stateless' && (token.kind === 'RefreshToken' || token.format === 'jwt');
    return stateless ? newStatelessJti() : newReferenceId();
  });
}

/** Stateless refresh tokens: the sealed payload is the value, and nothing is stored. */
function installStatelessRefreshTokens(provider: Provider, sealer: StatelessRefreshTokens) {
  sealRefreshTokenValues(provider, (token, payload) => (isStatelessJti(token.jti) ? sealer.seal(payload as never) : undefined));
}

/** JWT access tokens (jwt and stateless modes): verified here, then checked against ledger or lists. */
function installJwtAccessTokenLookup(provider: Provider, deps: TokenModeDependencies) {
  const keySet = createLocalJWKSet({ keys: deps.signingKeys.map(({ kty, crv, x, y, n, e, kid, alg }) => ({ kty, crv, x, y, n, e, kid, alg }) as JWK) });

  const fast = createAccessTokenVerifier(deps.config.issuer, deps.signingKeys);
  attachAccessTokenVerifier(provider, fast);
  const tallyClaims = (payload: JWTPayload) =>
    typeof payload.jti === 'string' && typeof payload.client_id === 'string' && typeof payload.iat === 'number' ? payload : undefined;

  async function verify(jwt: string): Promise<JWTPayload | undefined> {
    // The shape this server signs is judged with node:crypto (access-token-jwts.ts); any other by jose.
    const verdict = fast.verify(jwt);
    if (verdict.claims) return tallyClaims(verdict.claims);
    if (verdict.refused) {
      if (verdict.refused === 'forged' && claimedIssuer(jwt) === deps.config.issuer)
        deps.security?.report('forged_token', { reason: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
      return undefined;
    }
    try {
      const { payload } = await jwtVerify(jwt, keySet, { issuer: deps.config.issuer, typ: 'at+jwt', algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'] });
      return tallyClaims(payload);
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      // Claims this issuer but no key of its signed it (or signed it so): made by someone else.
      if (FORGERY_CODES.has(code) && claimedIssuer(jwt) === deps.config.issuer) deps.security?.report('forged_token', { reason: code });
      return undefined;
    }
  }

  /** The payload oidc-provider would have stored for this token, or undefined when it is not active. */
  async function activePayload(claims: JWTPayload): Promise<Record<string, unknown> | undefined> {
    const jti = claims.jti!;
    const clientId = claims.client_id as string;
    // The binding (DPoP `jkt`, mTLS `x5t#S256`) is the JWT's `cnf`: without it the token would pass as Bearer.
    // Built by assignment, not by spreading one object into a literal with more fields: on Node 20 such
    // a literal gets a new hidden class on every call (lib/object-shapes.ts).
    const payload: Record<string, unknown> = { jti, clientId, aud: claims.aud, scope: claims.scope, iat: claims.iat, exp: claims.exp };
    Object.assign(payload, bindingOf(claims.cnf));
    let grantId: string | undefined;
    let sessionUid: string | undefined;
    if (isStatelessJti(jti)) {
      grantId = typeof claims.grant_id === 'string' ? claims.grant_id : undefined;
      if (!(await deps.ledger.findActive({ id: jti, type: 'access_token', claims: { iat: claims.iat!, subject: claims.sub, clientId, grantId } })))
        return undefined;
    } else {
      const entry = (await deps.ledger.findActive({ id: jti, type: 'access_token', format: 'jwt' }))?.entry;
      if (!entry) return undefined;
      grantId = entry.grantId ?? undefined;
      sessionUid = entry.sessionUid ?? undefined;
    }
    if (!grantId) {
      payload.kind = 'ClientCredentials';
      payload.extra = cheapToSpread({ sub: clientId });
      return payload;
    }
    payload.kind = 'AccessToken';
    payload.accountId = claims.sub;
    payload.grantId = grantId;
    payload.extra = cheapToSpread({ grant_id: grantId });
    if (sessionUid) payload.sessionUid = sessionUid;
    return payload;
  }

  // oidc-provider looks a token up as AccessToken and as ClientCredentials at once: verify it once.
  const verifying = new Map<string, Promise<JWTPayload | undefined>>();
  const verifyOnce = (jwt: string) => {
    let running = verifying.get(jwt);
    if (!running) {
      running = verify(jwt).finally(() => verifying.delete(jwt));
      verifying.set(jwt, running);
    }
    return running;
  };

  /** The payload of a JWT this model answers for, when it is active (a user's token names its grant; a client's own does not). */
  async function jwtPayload(jwt: string, model: string): Promise<Record<string, unknown> | undefined> {
    const claims = await verifyOnce(jwt);
    if (!claims || (typeof claims.grant_id === 'string' ? 'AccessToken' : 'ClientCredentials') !== model) return undefined;
    const payload = await activePayload(claims);
    return payload?.kind === model ? payload : undefined;
  }

  // A JWT, bare (userinfo) or marked (introspection and revocation, see jwt-mark.ts), is ours to look
  // up; a marked value that is no JWT is no token; anything else goes to the adapter.
  interceptAccessTokenFind(provider, (value, model) => {
    const jwt = unmarkJwt(value);
    if (typeof jwt !== 'string' || !looksLikeJwt(jwt)) return jwt === value ? undefined : Promise.resolve(undefined);
    return jwtPayload(jwt, model);
  });
}

/**
 * The ledger entry of a jwt-mode access token, written before the token is signed (and so before the
 * response): a failure here fails the request rather than issuing a token the ledger does not know.
 * Stateless tokens get no entry, only a count (in memory or Redis, never waited for).
 */
function createJwtCustomizer(deps: TokenModeDependencies) {
  return async (_ctx: KoaContextWithOIDC, token: unknown, jwt: { payload: Record<string, unknown> }) => {
    const t = token as TokenInstance & TokenBinding;
    const { payload } = jwt;
    if (isStatelessJti(t.jti)) {
      deps.statelessIssued?.count();
      return;
    }
    await deps.ledger.create({
      id: timeOrderedUuid(),
      lookupHash: sha256(t.jti),
      type: 'access_token',
      format: 'jwt',
      clientId: t.clientId,
      subject: typeof payload.sub === 'string' ? payload.sub : null,
      grantId: t.grantId ?? null,
      sessionUid: t.sessionUid ?? null,
      scope: typeof payload.scope === 'string' ? payload.scope : null,
      audience: Array.isArray(payload.aud) ? payload.aud.join(' ') : ((payload.aud as string | undefined) ?? null),
      payload: null,
      userCodeHash: null,
      ...entryBinding(t),
      createdAt: new Date((payload.iat as number) * 1000),
      expiresAt: new Date((payload.exp as number) * 1000),
    });
  };
}

export function tokenModeConfiguration(deps: TokenModeDependencies) {
  return {
    formats: { customizers: { jwt: createJwtCustomizer(deps) } },
    // In the JWT and at introspection alike: a client's own token has sub = client_id (RFC 9068), and
    // a user's token names its grant, so that resource servers can match grant revocation events.
    extraTokenClaims: (_ctx: KoaContextWithOIDC, token: unknown) => {
      const t = token as TokenInstance;
      if (t.kind === 'ClientCredentials') return cheapToSpread({ sub: t.clientId });
      return t.grantId ? cheapToSpread({ grant_id: t.grantId }) : undefined;
    },
  };
}

export function installTokenModes(provider: Provider, deps: TokenModeDependencies) {
  installTokenIds(provider, deps.config);
  installStatelessRefreshTokens(provider, deps.statelessRefreshTokens);
  installJwtAccessTokenLookup(provider, deps);
}
