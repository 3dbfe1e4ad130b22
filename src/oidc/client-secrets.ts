import Provider, { errors } from 'oidc-provider';
import type { SecurityEvents } from '../config/security-events.js';
import { Overloaded, OVERLOADED_RETRY_AFTER_SECONDS } from '../lib/limiter.js';
import { parseBasicCredentials } from '../protocol/client-credentials.js';
import type { ClientStore } from '../storage/clients.js';
import { THROTTLE_POLICIES, type Throttle } from '../tokens/throttle.js';
import { replaceClientSecretComparison } from './internals/index.js';
import { TemporarilyUnavailable } from './unavailable.js';

/** A client_id as a security event carries it: as presented, at most 100 characters. */
const presentedId = (clientId: string | undefined) => clientId?.slice(0, 100);

/** Client authentication refused for now: too many failures of this client_id from this address (429, RFC 6749 shape). */
export class ClientAuthThrottled extends errors.InvalidClient {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed authentications of this client from this address; try again in ${retryAfterSeconds} s`);
    this.status = this.statusCode = 429;
    this.expose = true;
  }
}

/**
 * The one comparison of a presented client secret (storage: HMAC, or a legacy argon2 hash, read fresh
 * each time), behind the client-authentication throttle (tokens/throttle.ts, per client_id and client
 * IP): every path calls `verifySecret` with the caller's address, and `failed` for each refusal.
 */
export interface ClientSecrets {
  /** False for a wrong secret; throws ClientAuthThrottled while this client and address are refused. */
  verifySecret(clientId: string, secret: string, options: { ip: string | undefined; keyedOnly?: boolean }): Promise<boolean>;
  /** A failed client authentication: reported (`client_auth_failed`) and counted against the client and address. */
  failed(clientId: string | undefined, ip: string | undefined): Promise<void>;
}

export function createClientSecrets(
  clients: Pick<ClientStore, 'verifySecret'>,
  { throttle, security }: { throttle?: Throttle | undefined; security?: SecurityEvents | undefined } = {},
): ClientSecrets {
  const policy = THROTTLE_POLICIES.clientAuth;
  const subject = (clientId: string, ip: string | undefined) => `${clientId}\n${ip ?? ''}`;
  return {
    async verifySecret(clientId, secret, { ip, keyedOnly = false }) {
      const verdict = throttle ? await throttle.check(policy, subject(clientId, ip)) : undefined;
      if (verdict && !verdict.allowed) throw new ClientAuthThrottled(verdict.retryAfterSeconds);
      return clients.verifySecret(clientId, secret, { keyedOnly });
    },
    async failed(clientId, ip) {
      security?.report('client_auth_failed', { client_id: presentedId(clientId), ip });
      if (throttle && clientId) await throttle.fail(policy, subject(clientId, ip));
    },
  };
}

/** Reports expensive work refused at its bound (`overloaded`). */
export function reportOverloaded(security: SecurityEvents | undefined, error: Overloaded, fields: { path: string; ip: string | undefined }): void {
  security?.report('overloaded', { work: error.work, ...fields });
}

/** The requests of this provider whose client authentication was refused as overloaded, or throttled. */
const overloadedRequests = new WeakMap<object, Overloaded>();
const throttledRequests = new WeakMap<object, ClientAuthThrottled>();

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
    const ctx = Provider.ctx as { ip?: string } | undefined;
    try {
      return await secrets.verifySecret(clientId, actual, { ip: ctx?.ip });
    } catch (error) {
      if (error instanceof ClientAuthThrottled && ctx) throttledRequests.set(ctx, error);
      if (!(error instanceof Overloaded)) throw error;
      if (ctx) overloadedRequests.set(ctx, error);
      throw new TemporarilyUnavailable(error);
    }
  });
  provider.use(async (ctx, next) => {
    await next();
    const answered = ctx as unknown as Answered & OidcContext;
    const overloaded = overloadedRequests.get(ctx);
    const throttled = throttledRequests.get(ctx);
    if (overloaded) {
      answered.set({ 'retry-after': String(OVERLOADED_RETRY_AFTER_SECONDS), 'cache-control': 'no-store' });
      reportOverloaded(security, overloaded, { path: answered.path, ip: answered.ip });
    } else if (throttled) {
      answered.set({ 'retry-after': String(throttled.retryAfterSeconds), 'cache-control': 'no-store' });
    } else if (answered.status === 401 && (answered.body as { error?: unknown } | undefined)?.error === 'invalid_client') {
      await secrets.failed(clientIdOf(answered), answered.ip);
    }
  });
}
