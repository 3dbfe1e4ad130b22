import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { MAX_INTROSPECTION_AUDIENCES } from '../lib/enums.js';

// Tally's client metadata for its protocol policies, registered with oidc-provider as extra metadata
// (provider.ts). The admin layer checks the same fields first, in detail (admin/client-schemas.ts);
// this is oidc-provider's reading of them, the last word.

/**
 * `introspection_audiences`: who else's access tokens the client may introspect (introspection-policy.ts).
 * `require_pkce`: see pkceRequired. `require_mfa`: its users sign in with two factors (second-factors.ts).
 */
export const CLIENT_POLICY_METADATA = ['introspection_audiences', 'require_pkce', 'require_mfa'] as const;

/** oidc-provider's extraClientMetadata.validator for these fields; throws invalid_client_metadata naming the field first. */
export function checkClientPolicyMetadata(key: string, value: unknown, metadata: { token_endpoint_auth_method?: unknown }): void {
  if (value === undefined) return;
  if (key === 'introspection_audiences') {
    const ok = Array.isArray(value) && value.length <= MAX_INTROSPECTION_AUDIENCES && value.every((aud) => typeof aud === 'string' && URL.canParse(aud));
    if (!ok) throw new errors.InvalidClientMetadata(`introspection_audiences must be a list of at most ${MAX_INTROSPECTION_AUDIENCES} absolute URIs`);
  }
  if (key === 'require_mfa' && typeof value !== 'boolean') throw new errors.InvalidClientMetadata('require_mfa must be a boolean');
  if (key === 'require_pkce') {
    if (typeof value !== 'boolean') throw new errors.InvalidClientMetadata('require_pkce must be a boolean');
    if (value === false && metadata.token_endpoint_auth_method === 'none') {
      throw new errors.InvalidClientMetadata('require_pkce cannot be false for a public client (token_endpoint_auth_method none)');
    }
  }
}

/** PKCE (S256, the only method oidc-provider takes) for every client, unless a confidential client's metadata says `require_pkce: false`. */
export function pkceRequired(_ctx: KoaContextWithOIDC, client: { clientAuthMethod?: string; require_pkce?: unknown }): boolean {
  return client.clientAuthMethod === 'none' || client.require_pkce !== false;
}
