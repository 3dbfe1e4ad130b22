import { postAsClient } from '../shared/client-post.js';
import { randomUUID } from 'node:crypto';
import { sha256 } from '../shared/sha256.js';
import { Redis } from 'ioredis';
import { createDiscovery, IssuerUnavailableError, UntrustedEndpointError } from '../shared/discovery.js';
import { deriveEntryKey, sealEntry, unsealEntry } from '../shared/entry-keys.js';
import {
  asksForNonce,
  createNonceBook,
  type DpopAlgorithm,
  type DpopKey,
  generateDpopKey,
  type JsonWebKey,
  importDpopKey,
  requestMethod,
  signDpopProof,
} from './dpop.js';

export { IssuerUnavailableError, UntrustedEndpointError };
export type { DpopAlgorithm };

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
  /**
   * DPoP (RFC 9449): hold a key pair (ES256 unless `alg` says EdDSA), request tokens bound to it (a
   * token answer whose `token_type` is not DPoP is refused) and sign a proof for every `fetch`. With
   * `redisUrl` the key pair is shared with the token, sealed the same way, so that every process signs
   * with the key the shared token is bound to; without it the private key is not extractable.
   */
  dpop?: boolean | { alg?: DpopAlgorithm };
}

/** What to send with a request of one's own (see `getAuthorization`). */
export interface RequestAuthorization {
  token: string;
  /** `DPoP` for a bound token (with `dpop: true`), `Bearer` otherwise. */
  tokenType: 'Bearer' | 'DPoP';
  /** `authorization` (`DPoP <token>` or `Bearer <token>`) and, for a bound token, `dpop`: a proof for this method and URL. */
  headers: { authorization: string; dpop?: string };
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
  /**
   * The token and the headers for one request sent by other means than `fetch` (one call per request:
   * a DPoP proof is for one method and URL, and is used once). `nonce`: a `DPoP-Nonce` that server just
   * asked for (remembered for its origin, like the ones `fetch` sees).
   */
  getAuthorization(method: string, url: string | URL, options?: { nonce?: string }): Promise<RequestAuthorization>;
  /**
   * fetch() with the token (`Authorization: Bearer`, or with `dpop`: `Authorization: DPoP` and a fresh
   * proof); a DPoP `use_dpop_nonce` challenge is answered once with the server's nonce; on another 401
   * the token is renewed and the request retried once.
   */
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
  /** The key the token is bound to (with `dpop`); shared in Redis as its private JWK. */
  key?: DpopKey | undefined;
}

/** A token entry as sealed in Redis. */
interface StoredToken {
  accessToken: string;
  renewAt: number;
  expiresAt: number;
  tokenType?: string;
  dpopKey?: JsonWebKey;
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
  const dpopAlg: DpopAlgorithm | undefined = options.dpop ? ((options.dpop === true ? undefined : options.dpop.alg) ?? 'ES256') : undefined;
  // Bearer and DPoP tokens (and keys of different algorithms) are kept apart.
  const cacheKey = `tally:token:${sha256(JSON.stringify([issuer, options.clientId, options.scope ?? '', options.resource ?? '', ...(dpopAlg ? ['dpop', dpopAlg] : [])]))}`;
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
  const nonces = createNonceBook();
  // The key new tokens are bound to: generated once, or the shared token's key once one is taken from
  // Redis, so that the processes sharing a token end up with one key between them.
  let ownKey: Promise<DpopKey> | undefined;
  const keyForRequests = () =>
    (ownKey ??= generateDpopKey(dpopAlg!, !!redis).catch((error: unknown) => {
      ownKey = undefined;
      throw error;
    }));
  let lastImported: { source: string; key: DpopKey } | undefined;

  const fresh = (token: CachedToken | undefined): token is CachedToken => !!token && token.renewAt > Date.now();

  // Sealed with AES-GCM under the key derived from the secret, the Redis key as associated data: an
  // entry written or altered without the secret, or copied from another key, does not open.
  // A bound token is sealed with its key's private JWK: a process can only take it with the key.
  const seal = ({ key, ...token }: CachedToken) =>
    sealEntry(sealingKey, JSON.stringify({ ...token, ...(key ? { tokenType: 'DPoP', dpopKey: key.exported } : {}) } satisfies StoredToken), cacheKey);

  function rejectEntry(value: string): undefined {
    if (value !== lastRejected) rejectedCacheEntries++; // each bad entry counted once, however often it is read
    lastRejected = value;
    return undefined;
  }

  function unseal(value: string | null): StoredToken | undefined {
    if (!value) return undefined;
    const opened = unsealEntry(sealingKey, value, cacheKey);
    const token = opened === undefined ? undefined : (JSON.parse(opened) as StoredToken);
    if (typeof token?.accessToken !== 'string' || typeof token.renewAt !== 'number' || typeof token.expiresAt !== 'number') return rejectEntry(value);
    return token;
  }

  /** The shared entry as a token to use: with `dpop`, only a bound one whose key can be read. */
  async function readShared(value: string | null): Promise<CachedToken | undefined> {
    const stored = value ? unseal(value) : undefined;
    if (!stored) return undefined;
    const { tokenType, dpopKey, ...token } = stored;
    if (!dpopAlg) return token;
    const source = JSON.stringify(dpopKey ?? null);
    const key = lastImported?.source === source ? lastImported.key : await importDpopKey(dpopAlg, dpopKey);
    if (tokenType !== 'DPoP' || !key) return rejectEntry(value!);
    lastImported = { source, key };
    return { ...token, key };
  }

  async function requestToken(): Promise<CachedToken> {
    const { token_endpoint: endpoint } = await discover();
    const key = dpopAlg ? await keyForRequests() : undefined;
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (options.scope) body.set('scope', options.scope);
    if (options.resource) body.set('resource', options.resource);
    for (let attempt = 0; ; attempt++) {
      const headers = key ? { dpop: await signDpopProof(key, { method: 'POST', url: endpoint, nonce: nonces.get(endpoint) }) } : undefined;
      const response = await postAsClient(endpoint, options, body, { what: 'token request', timeoutMs: 10_000, headers });
      const nonced = key ? nonces.remember(endpoint, response) : false;
      type Answer = { access_token?: string; token_type?: string; expires_in?: number; error?: string; error_description?: string };
      const json = (await response.json().catch(() => ({}))) as Answer;
      // RFC 9449 §8: the token endpoint asks for a nonce with a 400 use_dpop_nonce; answered once.
      if (json.error === 'use_dpop_nonce' && response.status === 400 && nonced && attempt === 0) continue;
      if (!response.ok || !json.access_token) throw new TokenRequestError(json.error ?? 'invalid_response', json.error_description, response.status);
      if (key && json.token_type?.toLowerCase() !== 'dpop')
        throw new TokenRequestError(
          'invalid_token_type',
          `the token endpoint answered token_type ${JSON.stringify(json.token_type)}, not DPoP: the token is not bound to the key and is not used`,
          response.status,
        );
      const now = Date.now();
      const lifetimeMs = (json.expires_in ?? 300) * 1000;
      return { accessToken: json.access_token, expiresAt: now + lifetimeMs, renewAt: now + Math.max(lifetimeMs - skewMs, lifetimeMs / 2), key };
    }
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
        shared = await readShared(await redis!.get(cacheKey));
      } catch {
        return fresh(current) ? current : requestToken(); // Redis lost: on our own
      }
      if (usable(shared)) return adopt(shared);
      if ((await redis!.set(lock, owner, 'PX', LOCK_MS, 'NX').catch(() => 'OK')) === 'OK') {
        try {
          const again = await readShared(await redis!.get(cacheKey).catch(() => null));
          if (usable(again)) return adopt(again);
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

  /** A shared token taken from Redis: its key becomes the one this process binds its next tokens to. */
  function adopt(token: CachedToken): CachedToken {
    if (token.key) ownKey = Promise.resolve(token.key);
    return token;
  }

  /** A token; `rejected` names one an API has just refused, which is not handed out again. */
  async function tokenFor(rejected?: string): Promise<CachedToken> {
    for (let attempt = 0; ; attempt++) {
      // With Redis, the shared entry is the truth (another process may have invalidated or renewed it),
      // so it is read on every call (one read for concurrent callers); the memory copy serves without it.
      const shared = redisUsable();
      if (!shared && fresh(current) && current.accessToken !== rejected) return current;
      inFlight ??= (shared ? sharedToken(rejected) : requestToken())
        .then((token) => (current = token))
        .finally(() => {
          inFlight = undefined;
        });
      const token = await inFlight;
      // A renewal already under way when the refusal came may have brought back the refused token.
      if (token.accessToken !== rejected || attempt > 0) return token;
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

  /** The authorization headers for one request with this token: a bound token gets a fresh proof. */
  async function authorizationFor(token: CachedToken, method: string, url: string | URL): Promise<RequestAuthorization> {
    if (!token.key) return { token: token.accessToken, tokenType: 'Bearer', headers: { authorization: `Bearer ${token.accessToken}` } };
    const dpop = await signDpopProof(token.key, { method, url, accessToken: token.accessToken, nonce: nonces.get(url) });
    return { token: token.accessToken, tokenType: 'DPoP', headers: { authorization: `DPoP ${token.accessToken}`, dpop } };
  }

  return {
    getToken: async () => (await tokenFor()).accessToken,
    async getAuthorization(method, url, { nonce } = {}) {
      if (nonce !== undefined) nonces.set(url, nonce);
      return authorizationFor(await tokenFor(), method, url);
    },
    async fetch(url, init = {}) {
      const method = requestMethod(init.method);
      const send = async (token: CachedToken) => {
        const headers = new Headers(init.headers);
        for (const [name, value] of Object.entries((await authorizationFor(token, method, url)).headers)) headers.set(name, value);
        const response = await fetch(url, { ...init, headers });
        if (token.key) nonces.remember(url, response);
        return response;
      };
      let token = await tokenFor();
      let response = await send(token);
      let nonceAnswered = false;
      let renewed = false;
      while (response.status === 401) {
        // RFC 9449 §9: the resource server asks for its nonce; the token is fine, the proof is signed again.
        const nonceChallenge = !!token.key && asksForNonce(response.headers.get('www-authenticate')) && response.headers.has('dpop-nonce');
        if (nonceChallenge ? nonceAnswered : renewed) return response;
        if (!nonceChallenge) await invalidate(token.accessToken);
        // A body read from a stream or an iterator was consumed by the first send: the caller gets the 401.
        if (!replayable(init.body)) return response;
        await response.body?.cancel().catch(() => undefined); // free the connection
        if (nonceChallenge) nonceAnswered = true;
        else {
          renewed = true;
          token = await tokenFor(token.accessToken);
        }
        response = await send(token);
      }
      return response;
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
