import { usesClientSecret } from '../lib/enums.js';
import { parseBasicCredentials } from '../protocol/client-credentials.js';
import { isKeyedSecretHash } from '../storage/client-secrets.js';
import { ClientAuthThrottled } from './client-secrets.js';
import { findClient } from './internals/index.js';
import type { DeclineReason, DirectState } from './direct-guards.js';

/**
 * The client authenticates with HTTP Basic and its secret, stored as an HMAC and compared with the
 * one comparison every path uses (the stored value read fresh; oidc/client-secrets.ts), and
 * oidc-provider would accept that method for it (sets `state.client`). Otherwise oidc-provider
 * authenticates it (a legacy argon2 secret, under its bound) and produces any error and report.
 */
export async function knownBasicClient(state: DirectState): Promise<DeclineReason | undefined> {
  const credentials = parseBasicCredentials(state.request.headers.authorization);
  if (!credentials) return 'no_basic_credentials';
  const { provider, secrets } = state.context;
  const client = await findClient(provider, credentials.clientId);
  if (!client) return 'unknown_client';
  // With HTTP Basic, oidc-provider accepts either secret method as the registered one.
  if (!usesClientSecret(client.clientAuthMethod)) return 'client_auth_method';
  if (!client.clientSecret || !isKeyedSecretHash(client.clientSecret)) return 'secret_not_keyed';
  try {
    client.checkClientSecretExpiration('expired');
  } catch {
    return 'secret_expired';
  }
  // The caller's address, as src/http/forwarded.ts left it (the trusted client IP).
  const ip = state.request.headers['x-forwarded-for'];
  try {
    if (!(await secrets.verifySecret(client.clientId, credentials.secret, { keyedOnly: true, ip: typeof ip === 'string' ? ip : undefined })))
      return 'secret_not_verified';
  } catch (error) {
    // oidc-provider answers it (429, invalid_client, Retry-After).
    if (error instanceof ClientAuthThrottled) return 'client_throttled';
    throw error;
  }
  state.client = client;
  return undefined;
}
