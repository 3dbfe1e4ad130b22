import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { usesClientSecret } from '../lib/enums.js';
import { parseBasicCredentials } from '../protocol/client-credentials.js';
import { REVOCATION_EVENT, REVOCATION_STREAM_PATH, STREAM_CONNECTED, type FeedEvent } from '../protocol/revocations.js';
import type { RevocationFeed } from '../tokens/revocation/index.js';
import { MAX_FEED_ID } from '../storage/revocation-feed.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';
import { TallyError } from '../lib/errors.js';
import { overloadedOf } from '../lib/limiter.js';
import { ClientAuthThrottled, type ClientSecrets } from '../oidc/client-secrets.js';

const HEARTBEAT_MS = 5_000;
/** Backlog events read from the database at a time while a resuming client catches up. */
export const BACKLOG_PAGE = 1_000;
/** Ids remembered per stream to send each event once (live events arrive a little out of order at most). */
const RECENT_IDS = 2_000;

/** Resolves once the response can take more, or is gone. */
function drained(res: Response): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

type ClientWithSecret = { clientAuthMethod?: string };

/**
 * HTTP Basic with a confidential client's credentials, read as every client-authenticating endpoint
 * reads them and compared by the client model's comparison (oidc/client-secrets.ts). A refusal at the
 * bound of argon2 work (Overloaded) goes on to the error handler: a 503 with Retry-After.
 */
async function authenticateClient(provider: () => Provider, secrets: ClientSecrets, req: Request): Promise<string | undefined> {
  const credentials = parseBasicCredentials(req.headers.authorization);
  if (!credentials) return undefined;
  try {
    const client = (await provider().Client.find(credentials.clientId)) as unknown as ClientWithSecret | undefined;
    if (!client || !usesClientSecret(client.clientAuthMethod)) return undefined;
    return (await secrets.verifySecret(credentials.clientId, credentials.secret, { ip: req.ip })) ? credentials.clientId : undefined;
  } catch (error) {
    // A database that does not answer, or work refused at its bound, says nothing about the credentials: a 503 (the error handler's).
    if (isDatabaseUnavailable(error) || overloadedOf(error)) throw error;
    // Refused for now (too many failures from this address): the route answers 429.
    if (error instanceof ClientAuthThrottled) throw error;
    return undefined;
  }
}

/** The revocation stream's serving, shared by `GET /revocations/stream` (clients) and `GET /admin/revocations/stream` (the console). */
export interface RevocationStreams {
  /**
   * Answers an authenticated request with the stream: server-sent events, one per revocation.
   * Resumable: a client sending Last-Event-ID (or ?last_event_id=) first gets what it missed.
   */
  serve(req: Request, res: Response): Promise<void>;
  /** Ends every open stream (shutdown). */
  closeAll(): void;
}

export function createRevocationStreams(feed: RevocationFeed): RevocationStreams {
  const open = new Set<Response>();

  async function serve(req: Request, res: Response): Promise<void> {
    const resumeFrom = String(req.headers['last-event-id'] ?? req.query.last_event_id ?? '');
    if (resumeFrom && !(/^\d{1,10}$/.test(resumeFrom) && Number(resumeFrom) <= MAX_FEED_ID)) {
      throw new TallyError(400, 'invalid_request', 'Last-Event-ID must be an event id from this stream');
    }
    // Sent once each. On PostgreSQL ids can commit, and so arrive, a little out of order: below the
    // highest id sent, the recent ids sent decide.
    let floor = 0;
    let highest = 0;
    const sent = new Set<number>();
    /** False when the socket's buffer is full: the replay then waits for it to drain. */
    const send = ({ id, event }: FeedEvent): boolean => {
      if (id <= Math.max(floor, highest - RECENT_IDS) || sent.has(id)) return true;
      sent.add(id);
      highest = Math.max(highest, id);
      if (sent.size > RECENT_IDS) sent.delete(sent.values().next().value!);
      return res.write(`id: ${id}\nevent: ${REVOCATION_EVENT}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    // Subscribe first, then replay, so nothing falls between the two; `send` drops repeats.
    const queued: FeedEvent[] = [];
    let replaying = true;
    const unsubscribe = feed.subscribe((event) => (replaying ? queued.push(event) : send(event)));
    res.on('close', unsubscribe);
    // The first read comes before the 200, so that a database that does not answer is a 503 (the error
    // handler's); a later read that fails ends the stream, and the client resumes with Last-Event-ID.
    // A new stream starts after the latest event; read once the feed follows, so that nothing after it is missed.
    await feed.following();
    floor = resumeFrom ? Number(resumeFrom) : await feed.latestId();
    let page = resumeFrom ? await feed.backlog(floor, BACKLOG_PAGE) : [];
    res
      .status(200)
      .set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    res.write('retry: 1000\n\n');
    if (resumeFrom) {
      // The whole backlog, a page at a time, at the pace the client reads it.
      for (;;) {
        for (const event of page) if (!send(event)) await drained(res);
        if (res.destroyed || page.length < BACKLOG_PAGE) break;
        page = await feed.backlog(page.at(-1)!.id, BACKLOG_PAGE);
      }
    }
    replaying = false;
    if (res.destroyed) return;
    for (const event of queued.sort((a, b) => a.id - b.id)) send(event);
    // Everything before this line was the replay: a client catching up may stop reading here.
    res.write(`: ${STREAM_CONNECTED} ${new Date().toISOString()}\n\n`);

    const heartbeat = setInterval(() => res.write(`: keep-alive\n\n`), HEARTBEAT_MS);
    open.add(res);
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(res);
    };
    req.on('close', stop);
    res.on('close', stop);
  }

  return {
    serve,
    closeAll() {
      for (const res of open) res.end();
    },
  };
}

/**
 * `GET /revocations/stream` (REVOCATION_STREAM_PATH): the stream for validators without Redis, to
 * confidential clients authenticated with HTTP Basic.
 */
export function createRevocationStreamRouter({ provider, feed, secrets }: { provider: () => Provider; feed: RevocationFeed; secrets: ClientSecrets }): {
  router: Router;
  streams: RevocationStreams;
  closeAll(): void;
} {
  const router = express.Router();
  const streams = createRevocationStreams(feed);

  router.get(REVOCATION_STREAM_PATH, async (req: Request, res: Response) => {
    let clientId: string | undefined;
    try {
      clientId = await authenticateClient(provider, secrets, req);
    } catch (error) {
      if (!(error instanceof ClientAuthThrottled)) throw error;
      res.set('retry-after', String(error.retryAfterSeconds));
      throw new TallyError(429, 'invalid_client', error.error_description ?? 'too many failed authentications');
    }
    if (!clientId) {
      await secrets.failed(parseBasicCredentials(req.headers.authorization)?.clientId, req.ip);
      res.set('www-authenticate', 'Basic realm="tally"');
      throw new TallyError(401, 'invalid_client', 'authenticate with the client id and secret (HTTP Basic)');
    }
    await streams.serve(req, res);
  });

  return { router, streams, closeAll: () => streams.closeAll() };
}
