import type { Redis } from 'ioredis';
import { basicAuthorization } from '../shared/discovery.js';
import { readEventStream } from '../shared/sse.js';

/** A revocation as the server announces it (see GET /revocations/stream). */
export type RevocationMessage =
  | { type: 'token'; jti_hash: string; revoked_at: string }
  | { type: 'scope'; subject?: string; client_id?: string; grant_id?: string; revoked_at: string };

export interface TokenFacts {
  jtiHash?: string | undefined;
  subject?: string | undefined;
  clientId?: string | undefined;
  grantId?: string | undefined;
  /** Issued at, seconds. */
  iat?: number | undefined;
}

/** How long a remembered revocation matters: longer than any access token lives. */
const REMEMBER_MS = 24 * 3600_000;

/** The same key the server builds: present fields in a fixed order. */
function scopeKey(fields: { subject?: string | undefined; client?: string | undefined; grant?: string | undefined }): string {
  return (['subject', 'client', 'grant'] as const)
    .filter((f) => fields[f] !== undefined)
    .map((f) => `${f}=${fields[f]}`)
    .join('&');
}

function candidateKeys(facts: TokenFacts): string[] {
  const present = ([['subject', facts.subject], ['client', facts.clientId], ['grant', facts.grantId]] as const).filter(([, v]) => v !== undefined);
  const keys: string[] = [];
  for (let mask = 1; mask < 1 << present.length; mask++) keys.push(scopeKey(Object.fromEntries(present.filter((_, i) => mask & (1 << i)))));
  return keys;
}

export function tagsOf(message: RevocationMessage): string[] {
  if (message.type === 'token') return [`jti:${message.jti_hash}`];
  return [
    ...(message.subject !== undefined ? [`sub:${message.subject}`] : []),
    ...(message.client_id !== undefined ? [`client:${message.client_id}`] : []),
    ...(message.grant_id !== undefined ? [`grant:${message.grant_id}`] : []),
  ];
}

/**
 * What this validator knows was revoked, so that a JWT verified locally (which the server never sees)
 * is refused after its revocation. Kept in memory, or in Redis to be shared and to survive restarts.
 */
export interface RevocationState {
  record(message: RevocationMessage): Promise<void>;
  isRevoked(facts: TokenFacts): Promise<boolean>;
}

export function createMemoryRevocationState(): RevocationState {
  const tokens = new Map<string, number>();
  const scopes = new Map<string, number>();
  const forgetOld = () => {
    const cutoff = Date.now() - REMEMBER_MS;
    for (const [key, at] of tokens) if (at < cutoff) tokens.delete(key);
    for (const [key, at] of scopes) if (at < cutoff) scopes.delete(key);
  };
  return {
    async record(message) {
      const at = Date.parse(message.revoked_at) || Date.now();
      if (message.type === 'token') tokens.set(message.jti_hash, at);
      else {
        const key = scopeKey({ subject: message.subject, client: message.client_id, grant: message.grant_id });
        scopes.set(key, Math.max(at, scopes.get(key) ?? 0));
      }
      if (tokens.size + scopes.size > 100_000) forgetOld();
    },
    async isRevoked(facts) {
      if (facts.jtiHash && tokens.has(facts.jtiHash)) return true;
      const iat = facts.iat ?? Infinity;
      return candidateKeys(facts).some((key) => {
        const at = scopes.get(key);
        return at !== undefined && iat <= Math.floor(at / 1000);
      });
    },
  };
}

export function createRedisRevocationState(redis: Redis, prefix: string): RevocationState {
  return {
    async record(message) {
      const at = Date.parse(message.revoked_at) || Date.now();
      if (message.type === 'token') {
        await redis.set(`${prefix}r:t:${message.jti_hash}`, String(at), 'PX', REMEMBER_MS);
        return;
      }
      const key = `${prefix}r:s:${scopeKey({ subject: message.subject, client: message.client_id, grant: message.grant_id })}`;
      const current = Number((await redis.get(key)) ?? 0);
      if (at > current) await redis.set(key, String(at), 'PX', REMEMBER_MS);
    },
    async isRevoked(facts) {
      const keys = [...(facts.jtiHash ? [`${prefix}r:t:${facts.jtiHash}`] : []), ...candidateKeys(facts).map((k) => `${prefix}r:s:${k}`)];
      if (keys.length === 0) return false;
      const values = await redis.mget(...keys);
      const iat = facts.iat ?? Infinity;
      return values.some((value, index) => value !== null && (facts.jtiHash && index === 0 ? true : iat <= Math.floor(Number(value) / 1000)));
    },
  };
}

export interface RevocationListener {
  /** True while revocations are known to arrive (stream connected and alive, or Redis subscribed). */
  healthy(): boolean;
  close(): Promise<void>;
}

const SILENCE_MS = 12_000;

/** Follows GET /revocations/stream, reconnecting with Last-Event-ID after any drop. */
export function listenToStream(options: { issuer: string; clientId: string; clientSecret: string; onMessage: (m: RevocationMessage) => Promise<void> }): RevocationListener {
  const controller = new AbortController();
  let lastEventId = '0';
  let connected = false;
  let lastActivity = 0;

  void (async () => {
    let backoff = 250;
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(`${options.issuer.replace(/\/$/, '')}/revocations/stream`, {
          headers: { authorization: basicAuthorization(options.clientId, options.clientSecret), accept: 'text/event-stream', 'last-event-id': lastEventId },
          signal: controller.signal,
        });
        if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
        connected = true;
        lastActivity = Date.now();
        backoff = 250;
        await readEventStream(
          response.body,
          (event) => {
            if (event.id) lastEventId = event.id;
            if (event.event === 'revocation') void options.onMessage(JSON.parse(event.data) as RevocationMessage).catch(() => undefined);
          },
          () => (lastActivity = Date.now()),
        );
      } catch {
        // dropped or refused: retry below
      }
      connected = false;
      if (controller.signal.aborted) break;
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 5000);
    }
  })();

  return {
    healthy: () => connected && Date.now() - lastActivity < SILENCE_MS,
    async close() {
      controller.abort();
    },
  };
}

/** Follows the server's Redis channel. */
export function listenToRedis(subscriber: Redis, channel: string, onMessage: (m: RevocationMessage) => Promise<void>): RevocationListener {
  subscriber.on('message', (received: string, raw: string) => {
    if (received !== channel) return;
    try {
      const { event } = JSON.parse(raw) as { event: RevocationMessage };
      void onMessage(event).catch(() => undefined);
    } catch {
      // not ours
    }
  });
  subscriber.on('error', () => undefined);
  // ioredis re-subscribes by itself after a reconnect.
  void subscriber.subscribe(channel).catch(() => undefined);
  return {
    healthy: () => subscriber.status === 'ready',
    async close() {
      subscriber.disconnect();
    },
  };
}
