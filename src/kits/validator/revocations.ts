import type { Redis } from 'ioredis';
import { basicAuthorization } from '../../protocol/client-credentials.js';
import { decodeFeedEvent, REVOCATION_EVENT, REVOCATION_STREAM_PATH, STREAM_CONNECTED, type RevocationMessage } from '../../protocol/revocations.js';
import { readEventStream } from '../shared/sse.js';

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
  const present = (
    [
      ['subject', facts.subject],
      ['client', facts.clientId],
      ['grant', facts.grantId],
    ] as const
  ).filter(([, v]) => v !== undefined);
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

type StreamCredentials = { issuer: string; clientId: string; clientSecret: string };

/** Opens the server's revocation stream from after `lastEventId`; its body, or a throw when it is refused. */
async function openStream(options: StreamCredentials, lastEventId: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  const response = await fetch(`${options.issuer.replace(/\/$/, '')}${REVOCATION_STREAM_PATH}`, {
    headers: { authorization: basicAuthorization(options.clientId, options.clientSecret), accept: 'text/event-stream', 'last-event-id': lastEventId },
    signal,
  });
  if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
  return response.body;
}

/** Follows GET /revocations/stream, reconnecting with Last-Event-ID after any drop. */
export function listenToStream(options: StreamCredentials & { onMessage: (m: RevocationMessage) => Promise<void> }): RevocationListener {
  const controller = new AbortController();
  let lastEventId = '0';
  let connected = false;
  let lastActivity = 0;

  void (async () => {
    let backoff = 250;
    while (!controller.signal.aborted) {
      try {
        const body = await openStream(options, lastEventId, controller.signal);
        lastActivity = Date.now();
        backoff = 250;
        await readEventStream(
          body,
          (event) => {
            if (event.id) lastEventId = event.id;
            if (event.event === REVOCATION_EVENT) void options.onMessage(JSON.parse(event.data) as RevocationMessage).catch(() => undefined);
          },
          () => (lastActivity = Date.now()),
          // Healthy once the replay of what was missed is over.
          (comment) => (connected ||= comment.startsWith(STREAM_CONNECTED)),
        );
      } catch {
        // dropped or refused: retry below
      }
      connected = false;
      if (controller.signal.aborted) break;
      await new Promise((r) => setTimeout(r, backoff).unref()); // close() ends the loop; the wait keeps nothing alive
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

/**
 * Reads what the stream holds after `afterId` (its replay, which ends with a `: connected` comment),
 * records each event, and returns the highest id read (`afterId` when there was nothing).
 */
export async function readBacklog(options: StreamCredentials & { afterId: number; onMessage: (m: RevocationMessage) => Promise<void> }): Promise<number> {
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(new Error('the backlog took longer than 60 s')), 60_000);
  let highest = options.afterId;
  let complete = false;
  const recording: Promise<void>[] = [];
  try {
    await readEventStream(
      await openStream(options, String(options.afterId), controller.signal),
      (event) => {
        if (event.event !== REVOCATION_EVENT) return;
        highest = Math.max(highest, Number(event.id ?? 0));
        recording.push(options.onMessage(JSON.parse(event.data) as RevocationMessage));
      },
      () => undefined,
      (comment) => {
        if (!comment.startsWith(STREAM_CONNECTED)) return;
        complete = true;
        controller.abort();
      },
    ).catch((error: unknown) => {
      if (!complete) throw error;
    });
    if (!complete) throw new Error('the stream ended before its backlog did');
    await Promise.all(recording);
    return highest;
  } finally {
    clearTimeout(timeout);
    controller.abort();
  }
}

/** How far before the last id seen a catch-up starts: on PostgreSQL ids can commit out of order. */
const CATCH_UP_MARGIN = 100;
/** How often a Redis listener reads the backlog again, for anything Redis did not carry. */
const REREAD_MS = 5_000;

/**
 * Follows the server's Redis channel. Redis keeps nothing for a subscriber that was away, so each
 * time the subscription is (re)established, what the server recorded meanwhile (everything, the first
 * time) is read from its stream by `catchUp`; the listener is healthy only once that is done. It is
 * read again every few seconds too, for a revocation whose publication on Redis failed.
 */
export function listenToRedis(
  subscriber: Redis,
  channel: string,
  onMessage: (m: RevocationMessage) => Promise<void>,
  catchUp: (afterId: number) => Promise<number>,
): RevocationListener {
  let highest = 0;
  let caughtUp = false;
  let attempt = 0;
  let closed = false;
  subscriber.on('message', (received: string, raw: string) => {
    if (received !== channel) return;
    const decoded = decodeFeedEvent(raw);
    if (!decoded) return; // not ours
    if (decoded.id !== undefined) highest = Math.max(highest, decoded.id);
    void onMessage(decoded.event).catch(() => undefined);
  });
  subscriber.on('error', () => undefined);
  subscriber.on('close', () => {
    caughtUp = false;
    attempt++;
  });
  subscriber.on('ready', () => {
    const mine = ++attempt;
    caughtUp = false;
    void (async () => {
      for (let backoff = 250; !closed && mine === attempt; backoff = Math.min(backoff * 2, 5000)) {
        try {
          // Subscribed before reading the backlog, so that nothing falls between the two.
          await subscriber.subscribe(channel);
          const last = await catchUp(Math.max(0, highest - CATCH_UP_MARGIN));
          highest = Math.max(highest, last);
          if (mine === attempt) caughtUp = true;
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, backoff).unref());
        }
      }
    })();
  });
  // A revocation the server could not publish on Redis (a failed publish while this subscriber stayed
  // connected) would never arrive: the backlog is read again now and then to pick such ones up.
  let rereading = false;
  const reread = setInterval(() => {
    if (!caughtUp || rereading || subscriber.status !== 'ready') return;
    rereading = true;
    catchUp(Math.max(0, highest - CATCH_UP_MARGIN))
      .then((last) => (highest = Math.max(highest, last)))
      .catch(() => undefined)
      .finally(() => (rereading = false));
  }, REREAD_MS);
  reread.unref();
  return {
    healthy: () => caughtUp && subscriber.status === 'ready',
    async close() {
      closed = true;
      clearInterval(reread);
      subscriber.disconnect();
    },
  };
}
