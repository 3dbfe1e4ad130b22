import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SecurityEvents } from '../config/security-events.js';
import { TallyError } from '../lib/errors.js';
import { PROBLEM_CONTENT_TYPE, problemBody } from './admin/problem.js';
import { OAUTH_ERROR_CONTENT_TYPE, oauthErrorBody } from './errors.js';

/** The admin API's requests, whose refusals are RFC 9457 problems; every other refusal has the OAuth shape. */
export const isAdminTarget = (target: string): boolean => /^\/admin(?:[/?]|$)/.test(target);

/** What node's HTTP parser refuses, by its error code: the status and what to tell the client. */
const REFUSALS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'the request has too many header lines, or they are too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'the chunk extensions of the request are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request took too long to arrive'],
};
const NOT_HTTP: [number, string] = [400, 'the request is not well-formed HTTP/1.1'];
/** A client that hung up, mid-request or not: no security event. */
const HUNG_UP = new Set(['ECONNRESET', 'HPE_INVALID_EOF_STATE']);

/** The request target of the packet's request line, when the packet holds it (the parser's error keeps only the chunk it failed on). */
function targetOf(packet: Buffer | undefined): string {
  const line = packet?.subarray(0, Math.min(packet.length, 8192)).toString('latin1').split('\r\n', 1)[0] ?? '';
  return /^[A-Z]+ (\S+)/.exec(line)?.[1] ?? '';
}

/**
 * A request node's HTTP parser refuses (malformed, too many or too large headers, too slow) never
 * reaches a router, and node would answer it with a bare status line. Answered here instead in the
 * shape of the endpoint it named: a problem under /admin, RFC 6749's JSON error elsewhere (also when
 * the failing chunk does not show the request line). Node 22 counts header lines where Node 20 did
 * not (1,000 lines of 12.9 KB are refused there), so this is the answer the image gives to such a
 * request too. A socket that already carried an answer, or is closed, is only destroyed.
 *
 * Each refusal is a security event (`malformed_http`, with the parser's code and the peer's address,
 * never the request's bytes: they may hold credentials), also one that follows a pipelined answer,
 * where a smuggled request shows; a client that hung up is none.
 */
export function answerMalformedHttp(
  error: NodeJS.ErrnoException & { rawPacket?: Buffer },
  socket: Duplex & { bytesWritten?: number; remoteAddress?: string },
  security: SecurityEvents,
): void {
  const [status, description] = REFUSALS[error.code ?? ''] ?? NOT_HTTP;
  if (!HUNG_UP.has(error.code ?? '')) security.report('malformed_http', { code: error.code, status, ip: socket.remoteAddress });
  if (error.code === 'ECONNRESET' || !socket.writable || (socket.bytesWritten ?? 0) > 0) {
    socket.destroy();
    return;
  }
  const refusal = new TallyError(status, 'invalid_request', description);
  const admin = isAdminTarget(targetOf(error.rawPacket));
  const body = JSON.stringify(admin ? problemBody(refusal) : oauthErrorBody(refusal));
  const contentType = admin ? PROBLEM_CONTENT_TYPE : OAUTH_ERROR_CONTENT_TYPE;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}
