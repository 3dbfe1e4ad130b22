import { z } from 'zod';
import { plainText } from '../../lib/text.js';
import { TOKEN_STATUSES, TOKEN_TYPES } from '../../lib/enums.js';
import { TallyError } from '../../lib/errors.js';

export { createClientBody, patchClientBody } from '../../oidc/client-metadata.js';

export const createUserBody = z.strictObject({
  username: z.string().min(1).max(100).regex(/^[\w.@+-]+$/, 'may contain letters, digits and . _ @ + -'),
  password: z.string().min(8, 'must be at least 8 characters').max(1024),
  email: z.email().max(254).optional(),
  name: plainText(200).optional(),
});

// No control characters: no identifier holds one, and PostgreSQL cannot store a NUL (the event would fail).
const identifier = plainText(200);

export const revocationBody = z
  .strictObject({
    subject: identifier.optional(),
    client_id: identifier.optional(),
    grant_id: identifier.optional(),
  })
  .refine((v) => v.subject !== undefined || v.client_id !== undefined || v.grant_id !== undefined, 'give at least one of subject, client_id, grant_id');

/** A century: a bound any real retention fits in, far below what a date can hold. */
export const MAX_PRUNE_AGE_SECONDS = 100 * 366 * 24 * 3600;
export const pruneBody = z.strictObject({ older_than_seconds: z.number().int().min(0).max(MAX_PRUNE_AGE_SECONDS).optional() });

export const tokenQuery = z.object({
  subject: z.string().min(1).max(200).optional(),
  client_id: z.string().min(1).max(200).optional(),
  status: z.enum(TOKEN_STATUSES).optional(),
  type: z.enum(TOKEN_TYPES).optional(),
  limit: z.string().optional(),
  cursor: z.string().optional(),
});

/** Parses input with a schema, or throws a 400 problem naming the first offending field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, where = 'body'): z.infer<T> {
  if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) {
    if (where === 'body') throw new TallyError(400, 'invalid_request', 'the body must be a JSON object');
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.code === 'unrecognized_keys' ? issue.keys[0]! : issue.path.join('.') || undefined;
  if (issue.code === 'unrecognized_keys') throw new TallyError(400, 'unknown_field', 'unknown field', { field });
  throw new TallyError(400, 'invalid_request', issue.message, { field });
}
