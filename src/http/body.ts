import type { IncomingMessage } from 'node:http';

/**
 * How much of a refused body is still read and thrown away. A client that is still sending when the
 * answer goes out meets a closed connection and may never read the refusal; draining the rest first
 * lets it read the 413. Past this, the connection is cut instead.
 */
export const DRAIN_LIMIT = 1024 * 1024;

/**
 * The request body, or `undefined` when it is larger than `limit` bytes: then the rest is read and
 * discarded first (up to DRAIN_LIMIT more, else the connection is cut; a declared length beyond that
 * is refused at once). Answer a refusal with `Connection: close`.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (Number(req.headers['content-length'] ?? 0) > limit + DRAIN_LIMIT) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit + DRAIN_LIMIT) {
        req.socket.destroy();
        resolve(undefined);
      }
    });
    req.once('end', () => resolve(size <= limit ? Buffer.concat(chunks) : undefined));
    req.once('error', reject);
  });
}
