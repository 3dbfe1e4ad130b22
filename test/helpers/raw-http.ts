import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** True when the server closed the connection before `timeoutMs` passed. */
  closed: boolean;
}

/** A chunked body's data (RFC 9112 §7.1), as far as it arrived. */
function dechunk(body: string): string {
  let out = '';
  for (let rest = body; ; ) {
    const line = rest.indexOf('\r\n');
    const size = line < 0 ? 0 : parseInt(rest.slice(0, line), 16);
    if (!size) return out;
    out += rest.slice(line + 2, line + 2 + size);
    rest = rest.slice(line + 2 + size + 2);
  }
}

/**
 * Writes `request` (the whole HTTP/1.1 message, as bytes go out) on a new connection and reads the
 * first answer: for what fetch and node:http will not send (a repeated Host, a malformed message).
 * An answer still open after `timeoutMs` resolves with what arrived so far and `closed: false`.
 */
export function rawRequest(url: string, request: string | Buffer, timeoutMs = 5000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = rest.join('\r\n\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      resolve({ status, headers, body: /chunked/i.test(headers['transfer-encoding'] ?? '') ? dechunk(body) : body, closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('error', (error) => (chunks.length ? finish() : reject(error)));
    socket.write(request);
  });
}
