// The enumerations of Tally's contract, written once. Every layer imports them from here (lib sits
// beside the layers, below config), so a new mode or type is one edit: the zod schemas, the OpenAPI
// document generated from them, oidc-provider's metadata check and the ledger all follow.

/** Per client (`token_mode` metadata) or server-wide (`TOKEN_MODE`); see the README's table. */
export const TOKEN_MODES = ['reference', 'jwt', 'stateless'] as const;
export type TokenMode = (typeof TOKEN_MODES)[number];

export function isTokenMode(value: unknown): value is TokenMode {
  return (TOKEN_MODES as readonly unknown[]).includes(value);
}

/** What a ledger entry records. */
export const TOKEN_TYPES = ['access_token', 'refresh_token', 'authorization_code', 'device_code'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

/** How a ledger entry's token is written: a stateless token has no entry, so no format of its own here. */
export const TOKEN_FORMATS = ['reference', 'jwt'] as const;
export type TokenFormat = (typeof TOKEN_FORMATS)[number];

/** `redeemed`: a single-use code or rotated refresh token; `inactive`: caught by a bulk revocation. */
export const TOKEN_STATUSES = ['valid', 'redeemed', 'revoked', 'inactive'] as const;
export type TokenStatus = (typeof TOKEN_STATUSES)[number];

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'] as const;

export const RESPONSE_TYPES = ['code', 'none'] as const;

/**
 * The client authentication methods offered. client_secret_jwt is not: secrets are stored as hashes.
 * The two RFC 8705 methods authenticate with the client's TLS certificate (oidc/mtls.ts): no secret.
 */
export const CLIENT_AUTH_METHODS = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
  'none',
] as const;

/** The methods that present the client secret itself, so a client registered with one gets a secret. */
export const SECRET_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

/** Whether a client registered with `method` presents its secret (with HTTP Basic, oidc-provider accepts either). */
export function usesClientSecret(method: string | undefined): boolean {
  return (SECRET_AUTH_METHODS as readonly (string | undefined)[]).includes(method);
}

export const APPLICATION_TYPES = ['web', 'native'] as const;

/** Asymmetric only: symmetric algorithms would key on the client secret, stored here only as a keyed hash. */
export const ASYMMETRIC_SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/** The most audiences a client's `introspection_audiences` may list (the admin layer and oidc-provider's metadata check). */
export const MAX_INTROSPECTION_AUDIENCES = 20;
