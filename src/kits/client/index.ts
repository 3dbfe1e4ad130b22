import { postAsClient } from '../shared/client-post.js';
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createDiscovery, IssuerUnavailableError, UntrustedEndpointError } from '../shared/discovery.js';
import { deriveEntryKey, sealEntry, unsealEntry } from '../shared/entry-keys.js';

export { IssuerUnavailableError, UntrustedEndpointError };

export interface TokenClientOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  resource?: string;
  /** Share one token between processes through this Redis (sealed with a key derived from the secret). */
  redisUrl?: string;
  /** Renew this long before expiry (default 60), but never sooner than halfway through the token's lifetime. */
  skewSeconds?: number;
  /** Origins besides the issuer's that the discovery document's endpoints may be on (none by default). */
  allowedEndpointOrigins?: string[];
}

/** The token endpoint refused: `error` is the OAuth code (invalid_client, invalid_scope, ...). */
export class TokenRequestError extends Error {
  override name = 'TokenRequestError';
  constructor(
    readonly error: string,
    readonly errorDescription: string | undefined,
    readonly status: number,
  ) {
    super(`token request failed: ${error}${errorDescription ? ` (${errorDescription})` : ''}`);
  }
}

export interface TokenClient {
  /** A valid access token, from the cache when it is fresh enough. */
  getToken(): Promise<string>;
  /** fetch() with the bearer token; on a 401 the token is renewed and the request retried once. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  /** Forgets the cached token (here and, with Redis, for every process). */
  invalidate(): Promise<void>;
  /** Resolves once discovery is read and its token endpoint trusted; rejects with an UntrustedEndpointError naming it otherwise. */
  ready(): Promise<void>;
  /** `rejectedCacheEntries`: shared entries in Redis that failed authentication (put or altered by another writer), ignored. */
  stats(): { rejectedCacheEntries: number };
  close(): Promise<void>;
}

interface CachedToken {
  accessToken: string;
  /** ms: when to fetch a new one. */
  renewAt: number;
  /** ms: when it stops working. */
  expiresAt: number;
}

const LOCK_MS = 10_000;

/** Whether a fetch body can be sent a second time: a stream or an iterator is used up by the first. */
function replayable(body: RequestInit['body']): boolean {
  return (
    body == null ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof FormData ||
    body instanceof Blob ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  );
}

export function createTokenClient(options: TokenClientOptions): TokenClient {
  const issuer = options.issuer.replace(/\/$/, '');
  const skewMs = (options.skewSeconds ?? 60) * 1000;
  const discover = createDiscovery(issuer, { allowedEndpointOrigins: options.allowedEndpointOrigins });
  const cacheKey = `tally:token:${createHash('sha256')
    .update(JSON.stringify([issuer, options.clientId, options.scope ?? '', options.resource ?? '']))
    .digest('base64url')}`;
  const sealingKey = deriveEntryKey(options.clientSecret, cacheKey, 'tally client token cache');
  let rejectedCacheEntries = 0;
  let lastRejected: string | undefined;
  const redis = options.redisUrl ? new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000 }) : undefined;
  redis?.on('error', () => undefined);
  // Until its first connection, commands wait in ioredis's queue; once lost, Redis is skipped (each
  // process then keeps its own token) until it is back, rather than making every call wait for it.
  let redisConnected = false;
  redis?.on('ready', () => (redisConnected = true));
  const redisUsable = () => !!redis && (redis.status === 'ready' || (!redisConnected && ['wait', 'connecting', 'connect'].includes(redis.status)));

  let current: CachedToken | undefined;
  let inFlight: Promise<CachedToken> | undefined;

  const fresh = (token: CachedToken | undefined): token is CachedToken => !!token && token.renewAt > Date.now();

  // Sealed with AES-GCM under the key derived from the secret, the Redis key as associated data: an
  // entry written or altered without the secret, or copied from another key, does not open.
  const seal = (token: CachedToken) => sealEntry(sealingKey, JSON.stringify(token), cacheKey);

  function unseal(value: string | null): CachedToken | undefined {
    if (!value) return undefined;
    const opened = unsealEntry(sealingKey, value, cacheKey);
    const token = opened === undefined ? undefined : (JSON.parse(opened) as CachedToken);
    if (typeof token?.accessToken !== 'string' || typeof token.renewAt !== 'number' || typeof token.expiresAt !== 'number') {
      if (value !== lastRejected) rejectedCacheEntries++; // each bad entry counted once, however often it is read
      lastRejected = value;
      return undefined;
    }
    return token;
  }

  async function requestToken(): Promise<CachedToken> {
    const { token_endpoint: endpoint } = await discover();
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (options.scope) body.set('scope', options.scope);
    if (options.resource) body.set('resource', options.resource);
    const response = await postAsClient(endpoint, options, body, { what: 'token request', timeoutMs: 10_000 });
    const json = (await response.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!response.ok || !json.access_token) throw new TokenRequestError(json.error ?? 'invalid_response', json.error_description, response.status);
    const now = Date.now();
    const lifetimeMs = (json.expires_in ?? 300) * 1000;
    return { accessToken: json.access_token, expiresAt: now + lifetimeMs, renewAt: now + Math.max(lifetimeMs - skewMs, lifetimeMs / 2) };
  }

  /** With Redis: one process renews (under a lock) while the others wait for its result. */
  async function sharedToken(rejected?: string): Promise<CachedToken> {
    const usable = (token: CachedToken | undefined): token is CachedToken => fresh(token) && token.accessToken !== rejected;
    const deadline = Date.now() + LOCK_MS;
    const lock = `${cacheKey}:lock`;
    const owner = randomUUID();
    while (Date.now() < deadline) {
      let shared: CachedToken | undefined;
      try {
        shared = unseal(await redis!.get(cacheKey));
      } catch {
        return fresh(current) ? current : requestToken(); // Redis lost: on our own
      }
      if (usable(shared)) return shared;
      if ((await redis!.set(lock, owner, 'PX', LOCK_MS, 'NX').catch(() => 'OK')) === 'OK') {
        try {
          const again = unseal(await redis!.get(cacheKey).catch(() => null));
          if (usable(again)) return again;
          const token = await requestToken();
          await redis!.set(cacheKey, seal(token), 'PX', Math.max(1, token.expiresAt - Date.now())).catch(() => undefined);
          return token;
        } finally {
          // Release only our own lock.
          await redis!
            .eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, lock, owner)
            .catch(() => undefined);
        }
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return requestToken();
  }

  /** A token; `rejected` names one an API has just refused, which is not handed out again. */
  async function tokenFor(rejected?: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      // With Redis, the shared entry is the truth (another process may have invalidated or renewed it),
      // so it is read on every call (one read for concurrent callers); the memory copy serves without it.
      const shared = redisUsable();
      if (!shared && fresh(current) && current.accessToken !== rejected) return current.accessToken;
      inFlight ??= (shared ? sharedToken(rejected) : requestToken())
        .then((token) => (current = token))
        .finally(() => {
          inFlight = undefined;
        });
      const token = (await inFlight).accessToken;
      // A renewal already under way when the refusal came may have brought back the refused token.
      if (token !== rejected || attempt > 0) return token;
    }
  }

  async function invalidate(usedToken?: string) {
    if (usedToken !== undefined && current !== undefined && current.accessToken !== usedToken) return; // renewed already
    current = undefined;
    if (redis && redisUsable()) {
      // Dropped only if it still holds the token that was refused (compare and delete, in one step).
      const sealed = await redis.get(cacheKey).catch(() => null);
      if (sealed && (!usedToken || unseal(sealed)?.accessToken === usedToken)) {
        await redis
          .eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, cacheKey, sealed)
          .catch(() => undefined);
      }
    }
  }

  return {
    getToken: () => tokenFor(),
    async fetch(url, init = {}) {
      const send = async (token: string) => {
        const headers = new Headers(init.headers);
        headers.set('authorization', `Bearer ${token}`);
        return fetch(url, { ...init, headers });
      };
      const token = await tokenFor();
      const response = await send(token);
      if (response.status !== 401) return response;
      await invalidate(token);
      // A body read from a stream or an iterator was consumed by the first send: the caller gets the 401.
      if (!replayable(init.body)) return response;
      await response.body?.cancel().catch(() => undefined); // free the connection
      return send(await tokenFor(token));
    },
    invalidate: () => invalidate(),
    async ready() {
      await discover();
    },
    stats: () => ({ rejectedCacheEntries }),
    async close() {
      redis?.disconnect();
    },
  };
}
