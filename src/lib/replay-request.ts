import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/**
 * The request again, its body (read already, or rewritten) readable once more, so that oidc-provider
 * reads it from the stream as it would the original's. Handed over as `req.body` instead, it works too,
 * but oidc-provider then warns that a body parser sits in front of it. Method, URL, headers and socket
 * are the original's; the length is the new body's.
 */
export function replayRequest(req: IncomingMessage, body: Buffer): IncomingMessage {
  const headers = { ...req.headers, 'content-length': String(body.length) };
  delete headers['transfer-encoding'];
  const replay = Readable.from(body.length ? [body] : [], { objectMode: false });
  return Object.assign(replay, {
    method: req.method,
    url: req.url,
    headers,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    connection: req.socket,
    complete: true,
    aborted: false,
  }) as unknown as IncomingMessage;
}
