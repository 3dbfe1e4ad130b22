import type { z } from 'zod';
import { TallyError } from '../lib/errors.js';

export function isJsonObject(input: unknown): input is Record<string, unknown> {
  return typeof input === 'object' && input !== null && !Array.isArray(input);
}

/** The first thing wrong with an input, as zod found it: the field at fault (dotted), and why. */
export function firstIssue(error: z.ZodError): { field: string | undefined; message: string; unknownField: boolean } {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') return { field: issue.keys[0]!, message: 'unknown field', unknownField: true };
  return { field: issue.path.join('.') || undefined, message: issue.message, unknownField: false };
}

/**
 * Parses untrusted input (a request body or query, or what the CLI read from its options) with a
 * schema, or throws a 400 naming the first offending field: `unknown_field` or `invalid_request`.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, where: 'body' | 'query' = 'body'): z.output<T> {
  if (where === 'body' && !isJsonObject(input)) throw new TallyError(400, 'invalid_request', 'the body must be a JSON object');
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const { field, message, unknownField } = firstIssue(result.error);
  throw new TallyError(400, unknownField ? 'unknown_field' : 'invalid_request', message, { field });
}

/** 404 for an id that names nothing. */
export function notFound(what: string, id: string): TallyError {
  return new TallyError(404, 'not_found', `no ${what} with id ${id}`);
}
