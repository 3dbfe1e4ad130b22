import { readBody } from '../body.js';
import type { NextFunction, Request, Response } from 'express';
import { TallyError } from '../../lib/errors.js';

export const BODY_LIMIT = 100 * 1024;

/**
 * Finds the first key that appears twice in one JSON object (JSON.parse would silently keep the
 * last). Assumes `text` is valid JSON; returns the dotted path of the duplicate.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string>; path: string; isObject: boolean }[] = [];
  let i = 0;
  let lastString = '';
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      lastString = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      // A string followed by ':' is a key of the innermost object.
      let k = i;
      while (/\s/.test(text[k] ?? '')) k++;
      const top = stack.at(-1);
      if (text[k] === ':' && top?.isObject) {
        if (top.keys.has(lastString)) return top.path ? `${top.path}.${lastString}` : lastString;
        top.keys.add(lastString);
      }
      continue;
    }
    if (ch === '{' || ch === '[') {
      const parent = stack.at(-1);
      const path = parent?.isObject ? (parent.path ? `${parent.path}.${lastString}` : lastString) : (parent?.path ?? '');
      stack.push({ keys: new Set(), path, isObject: ch === '{' });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    }
    i++;
  }
  return undefined;
}

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
