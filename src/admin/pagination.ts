import { TallyError } from '../lib/errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface Page {
  limit: number;
  after?: { createdAt: Date; id: string };
}

export interface PageOf<R> {
  items: R[];
  /** Pass as `cursor` for the next page; null on the last. */
  next_cursor: string | null;
}

/** `limit` (1..200, default 50) and an opaque `cursor`: base64url of the last item's (created_at, id). */
export function parsePage(query: Record<string, unknown>): Page {
  const rawLimit = query.limit;
  let limit = DEFAULT_PAGE_SIZE;
  if (rawLimit !== undefined) {
    limit = Number(rawLimit);
    if (typeof rawLimit !== 'string' || !/^\d+$/.test(rawLimit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new TallyError(400, 'invalid_request', `must be an integer from 1 to ${MAX_PAGE_SIZE}`, { field: 'limit' });
    }
  }
  const cursor = query.cursor;
  if (cursor === undefined || cursor === '') return { limit };
  try {
    if (typeof cursor !== 'string') throw new Error();
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [number, string];
    const createdAt = new Date(at);
    // A number past what a date can hold (1e300, -1e20) makes an Invalid Date, which no query takes.
    if (typeof at !== 'number' || Number.isNaN(createdAt.getTime()) || typeof id !== 'string') throw new Error();
    return { limit, after: { createdAt, id } };
  } catch {
    throw new TallyError(400, 'invalid_request', 'not a cursor returned by this API', { field: 'cursor' });
  }
}

/** `rows` were fetched one more than asked (`limit + 1`): that one says whether another page follows. */
export function pageOf<T, R>(rows: T[], limit: number, key: (row: T) => { createdAt: Date; id: string }, present: (row: T) => R): PageOf<R> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const next_cursor = rows.length > limit && last ? Buffer.from(JSON.stringify([key(last).createdAt.getTime(), key(last).id])).toString('base64url') : null;
  return { items: items.map(present), next_cursor };
}
