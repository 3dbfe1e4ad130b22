import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config, TokenMode } from '../config/index.js';
import { sha256 } from '../lib/crypto.js';
import { replayRequest } from '../lib/replay-request.js';
import type { LedgerManager } from '../tokens/ledger-manager.js';
import type { StatelessRefreshTokens } from '../tokens/stateless-refresh-tokens.js';
import { isStatelessJti, newReferenceId, newStatelessJti } from '../tokens/token-ids.js';

export interface TokenModeDependencies {
  config: Config;
  ledger: LedgerManager;
  statelessRefreshTokens: StatelessRefreshTokens;
  signingKeys: JWK[];
}

type ClientLike = { clientId: string; token_mode?: unknown } | undefined;

export function tokenModeOf(client: ClientLike, fallback: TokenMode): TokenMode {
  const mode = client?.token_mode;
  return mode === 'reference' || mode === 'jwt' || mode === 'stateless' ? mode : fallback;
}

type TokenInstance = {
  jti: string;
  format?: string;
  client?: ClientLike;
  clientId: string;
  grantId?: string;
  sessionUid?: string;
  accountId?: string;
  kind: string;
};
type ModelClass = {
  name: string;
  prototype: object;
  find(value: string, options?: object): Promise<unknown>;
  instantiate(payload: object): unknown;
};

/**
 * Token ids carry their mode (see tokens/token-ids.ts). oidc-provider's own generateTokenId runs first
 * because it settles whether an access token is a JWT or opaque (`this.format`).
 */
function installTokenIds(provider: Provider, config: Config) {
  for (const model of [provider.AccessToken, provider.ClientCredentials, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode]) {
    const prototype = model.prototype as unknown as { generateTokenId(this: TokenInstance): string };
    const generateTokenId = prototype.generateTokenId;
    const isToken = model === provider.AccessToken || model === provider.ClientCredentials || model === provider.RefreshToken;
    prototype.generateTokenId = function modeAwareTokenId() {
      generateTokenId.call(this);
      const stateless = isToken && tokenModeOf(this.client, config.tokenMode) === 'stateless' && (this.kind === 'RefreshToken' || this.format === 'jwt');
      return stateless ? newStatelessJti() : newReferenceId();
    };
  }
}

/** Stateless refresh tokens: the sealed payload is the value, and nothing is stored. */
function installStatelessRefreshTokens(provider: Provider, sealer: StatelessRefreshTokens) {
  const prototype = provider.RefreshToken.prototype as unknown as { getValueAndPayload(this: TokenInstance): Promise<{ value: string; payload?: object }> };
  const getValueAndPayload = prototype.getValueAndPayload;
  prototype.getValueAndPayload = async function statelessOrStored() {
    const result = await getValueAndPayload.call(this);
    if (!isStatelessJti(this.jti) || !result.payload) return result;
    return { value: sealer.seal(result.payload as never) };
  };
}

/** How introspection and revocation get past oidc-provider's refusal of JWTs: a marked value. */
const JWT_MARK = 'jwt~';

/** JWT access tokens (jwt and stateless modes): verified here, then checked against ledger or lists. */
function installJwtAccessTokenLookup(provider: Provider, deps: TokenModeDependencies) {
  const keySet = createLocalJWKSet({ keys: deps.signingKeys.map(({ kty, crv, x, y, n, e, kid, alg }) => ({ kty, crv, x, y, n, e, kid, alg }) as JWK) });

  async function verify(jwt: string): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(jwt, keySet, { issuer: deps.config.issuer, typ: 'at+jwt', algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'] });
      return typeof payload.jti === 'string' && typeof payload.client_id === 'string' && typeof payload.iat === 'number' ? payload : undefined;
    } catch {
      return undefined;
    }
  }

  /** The payload oidc-provider would have stored for this token, or undefined when it is not active. */
  async function activePayload(claims: JWTPayload): Promise<Record<string, unknown> | undefined> {
    const jti = claims.jti!;
    const clientId = claims.client_id as string;
    const base = { jti, clientId, aud: claims.aud, scope: claims.scope, iat: claims.iat, exp: claims.exp };
    if (isStatelessJti(jti)) {
      const grantId = typeof claims.grant_id === 'string' ? claims.grant_id : undefined;
      if (!(await deps.ledger.findActive({ id: jti, type: 'access_token', claims: { iat: claims.iat!, subject: claims.sub, clientId, grantId } }))) return undefined;
      return grantId ? { ...base, kind: 'AccessToken', accountId: claims.sub, grantId, extra: { grant_id: grantId } } : { ...base, kind: 'ClientCredentials', extra: { sub: clientId } };
    }
    const entry = (await deps.ledger.findActive({ id: jti, type: 'access_token', format: 'jwt' }))?.entry;
    if (!entry) return undefined;
    return entry.grantId
      ? { ...base, kind: 'AccessToken', accountId: claims.sub, grantId: entry.grantId, extra: { grant_id: entry.grantId }, ...(entry.sessionUid ? { sessionUid: entry.sessionUid } : {}) }
      : { ...base, kind: 'ClientCredentials', extra: { sub: clientId } };
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

  for (const Model of [provider.AccessToken, provider.ClientCredentials] as unknown as ModelClass[]) {
    const find = Model.find.bind(Model);
    Model.find = async (value, options) => {
      const jwt = typeof value === 'string' && value.startsWith(JWT_MARK) ? value.slice(JWT_MARK.length) : value;
      if (typeof jwt !== 'string' || jwt.split('.').length !== 3) return jwt === value ? find(value, options) : undefined;
      const claims = await verifyOnce(jwt);
      // A user's token names its grant; a client's own does not. Only the right model looks further.
      if (!claims || (typeof claims.grant_id === 'string' ? 'AccessToken' : 'ClientCredentials') !== Model.name) return undefined;
      const payload = await activePayload(claims);
      return payload?.kind === Model.name ? Model.instantiate(payload) : undefined;
    };
  }

  // oidc-provider refuses any JWT at introspection and revocation before looking it up; mark ours so
  // the lookup above sees it. The body is read (at most 56 KiB, as oidc-provider would) and handed on.
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && (ctx.path === '/token/introspection' || ctx.path === '/token/revocation') && ctx.is('application/x-www-form-urlencoded')) {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of ctx.req) {
        size += (chunk as Buffer).length;
        if (size > 56 * 1024) {
          // Never act on part of a body (the server in front refuses these first: http/server.ts).
          ctx.status = 413;
          ctx.set('connection', 'close');
          ctx.body = { error: 'invalid_request', error_description: 'the request body is larger than 56 KiB' };
          return;
        }
        chunks.push(chunk as Buffer);
      }
      let body = Buffer.concat(chunks);
      const form = new URLSearchParams(body.toString('utf8'));
      const token = form.get('token');
      if (token && form.getAll('token').length === 1 && token.split('.').length === 3) {
        form.set('token', `${JWT_MARK}${token}`);
        body = Buffer.from(form.toString());
      }
      ctx.req = ctx.request.req = ctx.response.req = replayRequest(ctx.req, body);
    }
    await next();
  });
}

/**
 * The ledger entry of a jwt-mode access token, written before the token is signed (and so before the
 * response): a failure here fails the request rather than issuing a token the ledger does not know.
 * Stateless tokens get no entry.
 */
function createJwtCustomizer(deps: TokenModeDependencies) {
  return async (_ctx: KoaContextWithOIDC, token: unknown, jwt: { payload: Record<string, unknown> }) => {
    const t = token as TokenInstance;
    const { payload } = jwt;
    if (isStatelessJti(t.jti)) return;
    await deps.ledger.create({
      id: randomUUID(),
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
      if (t.kind === 'ClientCredentials') return { sub: t.clientId };
      return t.grantId ? { grant_id: t.grantId } : undefined;
    },
  };
}

export function installTokenModes(provider: Provider, deps: TokenModeDependencies) {
  installTokenIds(provider, deps.config);
  installStatelessRefreshTokens(provider, deps.statelessRefreshTokens);
  installJwtAccessTokenLookup(provider, deps);
}
