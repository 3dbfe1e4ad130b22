import type Provider from 'oidc-provider';
import { objectIn } from '../../protocol/dpop-proof.js';
import { providerConfiguration } from './library.js';

// Every replacement of a method of oidc-provider's models, and of its resolved configuration, is made
// here; what the replacement decides is passed in by the module that owns the rule. Models are lazy
// getters with private fields, so their classes cannot be swapped; patching `provider.X.prototype`
// or assigning a static `provider.X.find` affects only that provider instance.

/** A token model instance as the patches below hand it on. */
export interface TokenInstance {
  jti: string;
  /** The model's name (AccessToken, ClientCredentials, RefreshToken, AuthorizationCode, DeviceCode). */
  kind: string;
  format?: string;
  client?: { clientId: string; token_mode?: unknown };
  clientId: string;
  grantId?: string;
  sessionUid?: string;
  accountId?: string;
}

type FindOptions = { ignoreExpiration?: boolean };
type TokenModel = {
  name: string;
  find(value: unknown, options?: FindOptions): Promise<unknown>;
  instantiate(payload: object): unknown;
};

/**
 * The id (jti) of every token oidc-provider issues, as `tokenId` chooses it. oidc-provider's own
 * generateTokenId runs first because it settles whether an access token is a JWT or opaque (`format`).
 */
export function replaceTokenIds(provider: Provider, tokenId: (token: TokenInstance) => string): void {
  for (const model of [provider.AccessToken, provider.ClientCredentials, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode]) {
    const prototype = model.prototype as unknown as { generateTokenId(this: TokenInstance): string };
    const generateTokenId = prototype.generateTokenId;
    prototype.generateTokenId = function chosenTokenId() {
      generateTokenId.call(this);
      return tokenId(this);
    };
  }
}

/**
 * Refresh-token values: when `seal` returns a value for a token, that value is the token and nothing
 * is stored (without a payload, BaseModel.save skips the adapter's upsert and emits `.issued`).
 */
export function sealRefreshTokenValues(provider: Provider, seal: (token: TokenInstance, payload: object) => string | undefined): void {
  const prototype = provider.RefreshToken.prototype as unknown as { getValueAndPayload(this: TokenInstance): Promise<{ value: string; payload?: object }> };
  const getValueAndPayload = prototype.getValueAndPayload;
  prototype.getValueAndPayload = async function sealedOrStored() {
    const result = await getValueAndPayload.call(this);
    if (!result.payload) return result;
    const value = seal(this, result.payload);
    return value === undefined ? result : { value };
  };
}

/**
 * Access-token lookups (AccessToken and ClientCredentials, which oidc-provider asks together): for a
 * value `lookUp` claims, the token is built from the payload it finds (none: no token); any other
 * value is found by oidc-provider's own find (the adapter).
 */
export function interceptAccessTokenFind(
  provider: Provider,
  lookUp: (value: unknown, model: string) => Promise<Record<string, unknown> | undefined> | undefined,
): void {
  for (const Model of [provider.AccessToken, provider.ClientCredentials] as unknown as TokenModel[]) {
    const find = Model.find.bind(Model);
    Model.find = async (value, options) => {
      const lookup = lookUp(value, Model.name);
      if (!lookup) return find(value, options);
      const payload = await lookup;
      return payload ? Model.instantiate(payload) : undefined;
    };
  }
}

/** Every AccessToken found (by whichever find) is handed to `adjust` before oidc-provider uses it. */
export function adjustFoundAccessTokens<T extends object>(provider: Provider, adjust: (token: T) => void): void {
  const AccessToken = provider.AccessToken as unknown as { find(value: unknown, options?: FindOptions): Promise<T | undefined> };
  const find = AccessToken.find.bind(AccessToken);
  AccessToken.find = async (value, options) => {
    const token = await find(value, options);
    if (token) adjust(token);
    return token;
  };
}

/**
 * Client secrets compared by `compare` (used by client_secret_basic and client_secret_post); where it
 * returns nothing, by oidc-provider's own plain comparison.
 */
export function replaceClientSecretComparison(
  provider: Provider,
  compare: (clientId: string, stored: string | undefined, actual: string) => Promise<boolean> | undefined,
): void {
  const ClientClass = provider.Client as unknown as {
    prototype: { compareClientSecret(this: { clientId: string; clientSecret?: string }, actual: string): Promise<boolean> };
  };
  const original = ClientClass.prototype.compareClientSecret;
  ClientClass.prototype.compareClientSecret = async function compareClientSecret(actual: string) {
    return compare(this.clientId, this.clientSecret, actual) ?? original.call(this, actual);
  };
}

/**
 * The scopes oidc-provider recognises, answered by `Scopes` (a Set subclass with its own `has`):
 * oidc-provider copies the configured `scopes` into a plain Set, which is given that prototype.
 */
export function recogniseScopes(provider: Provider, Scopes: new () => Set<string>): void {
  Object.setPrototypeOf(providerConfiguration(provider).scopes, Scopes.prototype);
}

/**
 * Device user_code lookups (actions/code_verification.js, their only
 * caller): `lookUp` decides around oidc-provider's own find (it may throw to refuse one).
 */
export function interceptUserCodeFind(provider: Provider, lookUp: (find: () => Promise<unknown>) => Promise<unknown>): void {
  const DeviceCode = provider.DeviceCode as unknown as { findByUserCode(userCode: string, options?: FindOptions): Promise<unknown> };
  const findByUserCode = DeviceCode.findByUserCode.bind(DeviceCode);
  DeviceCode.findByUserCode = (userCode, options) => lookUp(() => findByUserCode(userCode, options));
}

/** oidc-provider's replay check, with the time a DPoP proof was signed when the caller knows it. */
export type UniqueUse = (iss: string, jti: string, exp: number, signedAt?: number) => Promise<boolean>;

/**
 * One-time use of a DPoP proof's or a client assertion's `jti` (models/replay_detection.js `unique`,
 * whose find-then-save lets two replicas both accept one proof): `unique` answers whether this is the
 * first use of `jti` by `iss` (one-time-marks.ts). oidc-provider does not pass a DPoP proof's `iat`: it
 * is read from the request's own proof (its `DPoP` header, verified by then) when that proof's `jti`
 * is the one asked for. Tally's direct answers pass it (`markDpopProofOnce`).
 */
export function replaceReplayDetection(provider: Provider, unique: UniqueUse): void {
  const ReplayDetection = provider.ReplayDetection as unknown as { unique: UniqueUse };
  ReplayDetection.unique = (iss, jti, exp, signedAt = requestProofIat(provider, jti)) => unique(iss, jti, exp, signedAt);
}

/** The `iat` of the DPoP proof of the request oidc-provider is answering, if its `jti` is `jti`. */
function requestProofIat(provider: Provider, jti: string): number | undefined {
  const ctx = (provider.constructor as unknown as { ctx?: { get(header: string): string } }).ctx;
  const claims = objectIn(ctx?.get('DPoP')?.split('.')[1] ?? '');
  return claims?.jti === jti && typeof claims.iat === 'number' ? claims.iat : undefined;
}
