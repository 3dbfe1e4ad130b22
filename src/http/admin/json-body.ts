import { readBody } from '../body.js';
import type { NextFunction, Request, Response } from 'express';
import { TallyError } from '../../lib/errors.js';
import { findDuplicateKey } from '../../lib/duplicate-keys.js';

export const BODY_LIMIT = 100 * 1024;

/** JSON bodies up to 100 kB, refused whole on any doubt (size, syntax, duplicate keys, content type). */
export async function parseJsonBody(req: Request, res: Response, next: NextFunction) {
  if (!['POST', 'PATCH', 'PUT'].includes(req.method)) return next();
  // A refused body ends the connection: it cannot carry another request.
  const tooLarge = () => {
    res.set('connection', 'close');
    return new TallyError(413, 'body_too_large', `the body is larger than ${BODY_LIMIT / 1024} kB`);
  };
  const body = await readBody(req, BODY_LIMIT);
  if (!body) throw tooLarge();
  const text = body.toString('utf8');
  if (text.trim() === '') {
    req.body = undefined;
    return next();
  }
  if (!req.is('application/json')) throw new TallyError(415, 'unsupported_media_type', 'send the body as application/json');
  try {
    req.body = JSON.parse(text);
  } catch (error) {
    throw new TallyError(400, 'invalid_json', `the body is not valid JSON: ${(error as Error).message}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) throw new TallyError(400, 'duplicate_key', 'appears more than once', { field: duplicate });
  next();
}
