import { NO_VSCHAR, type ProviderClient } from './internals/index.js';
import type { DeclineReason, DirectState } from './direct-guards.js';

const BASE64 = /^([A-Za-z0-9+/]*)(={0,2})$/;

function isValidBase64(input: string): boolean {
  const match = BASE64.exec(input);
  if (!match?.[1]) return false;
  const remainder = match[1].length % 4;
  if (!match[2]) return remainder !== 1;
  return (match[1].length + match[2].length) % 4 === 0 && match[2].length === 4 - remainder;
}

const decodeCredential = (part: string) => decodeURIComponent(part.replace(/\+/g, '%20'));

/** RFC 6749 §2.3.1: client_id and client_secret are form-encoded inside the Basic credentials. */
function basicCredentials(authorization: string | undefined): { clientId: string; secret: string } | undefined {
  const parts = authorization?.split(' ');
  if (parts?.length !== 2 || parts[0]!.toLowerCase() !== 'basic' || !isValidBase64(parts[1]!)) return undefined;
  const basic = Buffer.from(parts[1]!, 'base64').toString('utf8');
  const colon = basic.indexOf(':');
  if (colon === -1) return undefined;
  try {
    const clientId = decodeCredential(basic.slice(0, colon));
    const secret = decodeCredential(basic.slice(colon + 1));
    return clientId && secret && !NO_VSCHAR.test(clientId) && !NO_VSCHAR.test(secret) ? { clientId, secret } : undefined;
  } catch {
    return undefined;
  }
}

type ClientModel = { find(id: string): Promise<ProviderClient | undefined> };

/**
 * The client authenticates with HTTP Basic and a secret verified within the last few minutes, and
 * oidc-provider would accept that method for it (sets `state.client`). Otherwise oidc-provider
 * authenticates it, with argon2, and produces any error.
 */
export async function knownBasicClient(state: DirectState): Promise<DeclineReason | undefined> {
  const credentials = basicCredentials(state.request.headers.authorization);
  if (!credentials) return 'no_basic_credentials';
  const { provider, secrets } = state.context;
  const client = (await (provider.Client as unknown as ClientModel).find(credentials.clientId)) ?? undefined;
  if (!client) return 'unknown_client';
  // With HTTP Basic, oidc-provider accepts either secret method as the registered one.
  if (client.clientAuthMethod !== 'client_secret_basic' && client.clientAuthMethod !== 'client_secret_post') return 'client_auth_method';
  if (!client.clientSecret?.startsWith('$argon2')) return 'secret_not_hashed';
  try {
    client.checkClientSecretExpiration('expired');
  } catch {
    return 'secret_expired';
  }
  if (!secrets.isKnown(client.clientId, client.clientSecret, credentials.secret)) return 'secret_not_verified';
  state.client = client;
  return undefined;
}
