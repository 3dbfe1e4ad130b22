import Provider from 'oidc-provider';
import type { SecurityEvents } from '../config/security-events.js';
import { Overloaded, OVERLOADED_RETRY_AFTER_SECONDS } from '../lib/limiter.js';
import { parseBasicCredentials } from '../protocol/client-credentials.js';
import type { ClientStore } from '../storage/clients.js';
import { replaceClientSecretComparison } from './internals/index.js';
import { TemporarilyUnavailable } from './unavailable.js';

/** The one comparison of a presented client secret (storage: HMAC, or a legacy argon2 hash), read fresh each time. */
export type ClientSecrets = Pick<ClientStore, 'verifySecret'>;

/** A client_id as a security event carries it: as presented, at most 100 characters. */
const presentedId = (clientId: string | undefined) => clientId?.slice(0, 100);

/** Reports a failed client authentication (`client_auth_failed`) with the client_id as presented. */
export function reportClientAuthFailed(security: SecurityEvents | undefined, clientId: string | undefined, ip: string | undefined): void {
  security?.report('client_auth_failed', { client_id: presentedId(clientId), ip });
}

/** Reports expensive work refused at its bound (`overloaded`). */
export function reportOverloaded(security: SecurityEvents | undefined, error: Overloaded, fields: { path: string; ip: string | undefined }): void {
  security?.report('overloaded', { work: error.work, ...fields });
}

/** The requests of this provider whose client authentication was refused as overloaded. */
const overloadedRequests = new WeakMap<object, Overloaded>();

type Answered = { status: number; body: unknown; ip: string; path: string; get(field: string): string; set(fields: Record<string, string>): void };
type OidcContext = { oidc?: { params?: { client_id?: unknown }; client?: { clientId: string } } };

function clientIdOf(ctx: Answered & OidcContext): string | undefined {
  const param = ctx.oidc?.params?.client_id;
  return parseBasicCredentials(ctx.get('authorization'))?.clientId ?? (typeof param === 'string' ? param : undefined) ?? ctx.oidc?.client?.clientId;
}

/**
 * oidc-provider compares `client_secret` as plain text; every client-secret comparison it makes
 * (client_secret_basic and _post at every endpoint, and the revocation stream, which asks the same
 * client model) goes to `secrets.verifySecret` instead. A comparison refused at its bound (legacy argon2
 * work, Overloaded) is a 503 temporarily_unavailable with Retry-After. Every failed client
 * authentication oidc-provider answers (401 invalid_client) is reported as `client_auth_failed`,
 * including those the direct answers left to it (oidc/direct-client-auth.ts).
 */
export function installHashedClientSecrets(provider: Provider, secrets: ClientSecrets, security?: SecurityEvents): void {
  replaceClientSecretComparison(provider, async (clientId, _stored, actual) => {
    try {
      return await secrets.verifySecret(clientId, actual);
    } catch (error) {
      if (!(error instanceof Overloaded)) throw error;
      if (Provider.ctx) overloadedRequests.set(Provider.ctx, error);
      throw new TemporarilyUnavailable(error);
    }
  });
  provider.use(async (ctx, next) => {
    await next();
    const answered = ctx as unknown as Answered & OidcContext;
    const overloaded = overloadedRequests.get(ctx);
    if (overloaded) {
      answered.set({ 'retry-after': String(OVERLOADED_RETRY_AFTER_SECONDS), 'cache-control': 'no-store' });
      reportOverloaded(security, overloaded, { path: answered.path, ip: answered.ip });
    } else if (answered.status === 401 && (answered.body as { error?: unknown } | undefined)?.error === 'invalid_client') {
      reportClientAuthFailed(security, clientIdOf(answered), answered.ip);
    }
  });
}
