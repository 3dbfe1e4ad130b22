// The files of oidc-provider's lib/ that Tally imports (it publishes no types for them), with only
// what Tally reads of each. Imported by src/oidc/internals/library.ts alone, after the version check.

declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  /** The provider's private state (`#int`): its resolved configuration among other things. */
  export default function instance(provider: object): { configuration: unknown; staticClients?: Map<string, unknown> } | undefined;
}

declare module 'oidc-provider/lib/helpers/token_find.js' {
  /** Introspection's lookup: by hint, as AccessToken, ClientCredentials and RefreshToken. */
  export function findToken(provider: object, value: string, hint: string | undefined): Promise<unknown>;
}

declare module 'oidc-provider/lib/helpers/configuration_result.js' {
  /** Validates what getResourceServerInfo returned; throws on a bad value. */
  export function resourceServer(value: unknown): unknown;
  /** Validates what findAccount returned (undefined, or an account); throws on a bad value. */
  export function account(value: unknown): unknown;
}

declare module 'oidc-provider/lib/helpers/is_valid_scope.js' {
  export default function isValidScope(scope: unknown): boolean;
}

declare module 'oidc-provider/lib/consts/client_attributes.js' {
  /** A character outside VSCHAR (RFC 6749 Appendix A). */
  export const noVSCHAR: RegExp;
}

declare module 'oidc-provider/lib/helpers/challenge.js' {
  /** How far a DPoP proof's `iat` may be from now (seconds), and how long its `jti` is remembered past now. */
  export const CHALLENGE_OK_WINDOW: number;
}

declare module 'oidc-provider/lib/helpers/als.js' {
  /** The store of the request being answered (`Provider.ctx`), entered by every request. */
  const store: import('node:async_hooks').AsyncLocalStorage<unknown>;
  export default store;
}

declare module 'oidc-provider/lib/helpers/filter_claims.js' {
  /** The `claims` request parameter's members for `target`, less those the grant does not allow. */
  export default function filterClaims(source: unknown, target: 'id_token' | 'userinfo', grant: object): Record<string, unknown>;
}
