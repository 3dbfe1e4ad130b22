/**
 * The revocation wire contract between the server and its kits (tally/validator): what a revocation
 * names, the Redis channel it is published on, and the server-sent-events stream that serves it too.
 * Imports nothing: the kits are published apart from the server.
 */

/** What a revocation names. Token values never leave the server: a token is named by SHA-256 of its jti. */
export type RevocationMessage =
  | { type: 'token'; jti_hash: string; revoked_at: string }
  | { type: 'scope'; subject?: string; client_id?: string; grant_id?: string; revoked_at: string };

/** A revocation and its place in the server's feed (the stream's event id). */
export interface FeedEvent {
  id: number;
  event: RevocationMessage;
}

/** The Redis pub/sub channel of an issuer's revocations; each message is a FeedEvent as JSON. */
export const revocationChannel = (issuer: string) => `tally:revocations:${issuer}`;

/**
 * `GET` at the issuer, HTTP Basic client authentication: server-sent events named REVOCATION_EVENT,
 * each with the feed id as its id and the RevocationMessage as JSON data; resumable with Last-Event-ID.
 * A comment starting with STREAM_CONNECTED ends the replay of what the client missed.
 */
export const REVOCATION_STREAM_PATH = '/revocations/stream';
export const REVOCATION_EVENT = 'revocation';
export const STREAM_CONNECTED = 'connected';

export const encodeFeedEvent = (event: FeedEvent): string => JSON.stringify(event);

/** A Redis message read back; undefined when it is not a revocation (the id may be missing: it is only a hint). */
export function decodeFeedEvent(raw: string): { id?: number; event: RevocationMessage } | undefined {
  try {
    const { id, event } = JSON.parse(raw) as { id?: unknown; event?: { type?: unknown } };
    if (event?.type !== 'token' && event?.type !== 'scope') return undefined;
    return typeof id === 'number' ? { id, event: event as RevocationMessage } : { event: event as RevocationMessage };
  } catch {
    return undefined;
  }
}
