import { z } from 'zod';
import { plainText } from '../lib/text.js';
import { TOKEN_FORMATS, TOKEN_STATUSES, TOKEN_TYPES } from '../lib/enums.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js';

// What the admin operations take and give, besides clients (client-schemas.ts): the inputs are
// parsed with these, and the OpenAPI document is generated from all of them (json-schemas.ts).

const timestamp = z.string().meta({ format: 'date-time' });

// Users

const password = z.string().min(8, 'must be at least 8 characters').max(1024).meta({ writeOnly: true });
const email = z.email().max(254);
const roles = z
  .array(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9_:.-]+$/, 'a role name is 1 to 64 of a-z 0-9 _ : . -'),
  )
  .max(50)
  .transform((names) => [...new Set(names)])
  .meta({ description: 'role names; `admin` lets the user’s tokens carry scope `admin` (see the contract)' });

export const createUserBody = z.strictObject({
  username: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[\w.@+-]+$/, 'may contain letters, digits and . _ @ + -'),
  password,
  email: email.optional(),
  name: plainText(200).optional(),
  roles: roles.optional(),
});

export const userPatchBody = z
  .strictObject({
    email: email.nullable().optional(),
    name: plainText(200).nullable().optional(),
    roles: roles.optional(),
    disabled: z.boolean().optional().meta({ description: 'true: the user cannot sign in and every token of theirs becomes inactive' }),
    password: password.optional(),
  })
  .meta({ description: 'any of the fields; null clears email or name' });

export const userQuery = z.object({
  q: z.string().min(1).max(200).optional().meta({ description: 'a part of the username, email or name, matched case-insensitively' }),
  // Read by parsePage.
  limit: z.string().optional(),
  cursor: z.string().optional(),
});

export const userView = z.object({
  id: z.string().meta({ description: 'the `sub` of the user’s tokens' }),
  username: z.string(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  roles: z.array(z.string()),
  disabled: z.boolean(),
  created_at: timestamp,
});

// The ledger

export const tokenType = z.enum(TOKEN_TYPES);
export const tokenStatus = z.enum(TOKEN_STATUSES);

export const tokenQuery = z.object({
  subject: z.string().min(1).max(200).optional().meta({ description: 'the `sub` (a user id, or a client id for client-credentials tokens)' }),
  client_id: z.string().min(1).max(200).optional(),
  grant_id: z.string().min(1).max(200).optional(),
  status: tokenStatus.optional(),
  type: tokenType.optional(),
  // Read by parsePage.
  limit: z.string().optional(),
  cursor: z.string().optional(),
});

export const ledgerEntryView = z.object({
  id: z.string(),
  type: tokenType,
  format: z.enum(TOKEN_FORMATS),
  status: tokenStatus,
  subject: z.string().nullable(),
  client_id: z.string(),
  grant_id: z.string().nullable(),
  scope: z.string().nullable(),
  audience: z.string().nullable(),
  created_at: timestamp,
  expires_at: timestamp,
  redeemed_at: timestamp.nullable(),
  cnf: z.object({ jkt: z.string().optional(), 'x5t#S256': z.string().optional() }).optional().meta({
    description:
      'what a sender-constrained token is bound to: a DPoP key thumbprint (`jkt`, RFC 9449), a client certificate thumbprint (`x5t#S256`, RFC 8705), or both; absent when unbound',
  }),
});

// No control characters: no identifier holds one, and PostgreSQL cannot store a NUL (the event would fail).
const identifier = plainText(200);

export const revocationBody = z
  .strictObject({
    subject: identifier.optional(),
    client_id: identifier.optional(),
    grant_id: identifier.optional(),
  })
  .refine((v) => v.subject !== undefined || v.client_id !== undefined || v.grant_id !== undefined, 'give at least one of subject, client_id, grant_id')
  // What the refinement checks, said in JSON Schema.
  .meta({ description: 'at least one field; a token matches when it matches every field given', minProperties: 1 });

export const revocationResult = z.object({ revoked: z.int().min(0) });

/** A century: a bound any real retention fits in, far below what a date can hold. */
export const MAX_PRUNE_AGE_SECONDS = 100 * 366 * 24 * 3600;

export const pruneBody = z.strictObject({ older_than_seconds: z.number().int().min(0).max(MAX_PRUNE_AGE_SECONDS).optional().meta({ default: 0 }) });

export const pruneResult = z.object({
  deleted: z.int().min(0).meta({ description: 'ledger entries, revoked-list rows, provider records and feed events deleted' }),
  audit_deleted: z.int().min(0).meta({ description: 'audit events older than AUDIT_RETENTION_DAYS deleted' }),
});

/** What `GET /revocations/preview` takes: the body of a bulk revocation, as a query. */
export const revocationPreviewQuery = z
  .strictObject({ subject: identifier.optional(), client_id: identifier.optional(), grant_id: identifier.optional() })
  .refine((v) => v.subject !== undefined || v.client_id !== undefined || v.grant_id !== undefined, 'give at least one of subject, client_id, grant_id');

export const revocationPreview = z.object({
  matching: z.int().min(0).meta({ description: 'live ledger entries (every type) that a bulk revocation with the same fields would make inactive now' }),
  stateless_not_counted: z
    .literal(true)
    .meta({ description: 'stateless tokens have no ledger entry: the revocation reaches them, but they cannot be counted' }),
});

// Signing keys

export const signingKeyView = z.object({
  kid: z.string(),
  alg: z.enum(['ES256', 'RS256']),
  status: z.enum(['active', 'published', 'retired']).meta({
    description:
      '`active`: the key its algorithm signs with now; `published`: in the JWKS but not signing (newer and within the activation delay, or older until it retires); `retired`: past `retires_at`, no longer published',
  }),
  created_at: timestamp,
  retires_at: timestamp.nullable().meta({ description: 'when the key leaves the JWKS; null while it is the newest' }),
});

export const keyRotationBody = z.strictObject({}).meta({ description: 'nothing: a rotation takes no fields' });

export const signingKeyRotation = z.object({
  keys: z.array(signingKeyView).meta({ description: 'the new keys, one per algorithm' }),
  previous_keys_retire_at: timestamp.meta({ description: 'when the older keys leave the JWKS (after every token they signed has expired)' }),
});

// Statistics

export const MIN_STATS_WINDOW = 60;
export const MAX_STATS_WINDOW = 86_400;

/** `window_seconds` as documented; parseStatsQuery reads it (a query string holds only text). */
export const statsQuery = z.object({
  window_seconds: z.int().min(MIN_STATS_WINDOW).max(MAX_STATS_WINDOW).optional().meta({ description: 'the period shown, ending now', default: 3600 }),
});

const perMode = z.object({ reference: z.int().min(0), jwt: z.int().min(0), stateless: z.int().min(0) });

export const statsView = z.object({
  window_seconds: z.int(),
  bucket_seconds: z.int().meta({ description: '60, or a larger multiple of 60 so that there are at most 120 buckets' }),
  buckets: z.array(z.object({ start: timestamp, issued: perMode, revoked: perMode })).meta({
    description:
      'oldest first; the last one holds now. Issued: access tokens by token mode. Revoked: access tokens by mode (stateless: those revoked one by one)',
  }),
  totals: z.object({ issued: perMode, revoked: perMode }),
  revocations_live: z.int().min(0).meta({ description: 'revocation events published in the window (what the revocation streams carried)' }),
  stateless_counted: z.enum(['shared', 'this_process']).meta({
    description: 'stateless tokens are written nowhere at issuance: counted in Redis for every replica (`shared`), or without Redis by this process alone',
  }),
});

// The audit trail

/** Who made an admin request: the bootstrap key, or an access token with scope admin. */
export const ADMIN_ACTOR_KINDS = ['api_key', 'token'] as const;
/** The methods the audit trail records. */
export const AUDITED_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;

export const auditEventView = z.object({
  id: z.string().meta({ description: 'UUIDv7' }),
  created_at: timestamp.meta({ description: 'when the answer was sent' }),
  actor: z
    .object({
      kind: z.enum(ADMIN_ACTOR_KINDS),
      id: z.string().meta({ description: '`api-key`, or the client (`client_id/sub` for a user’s token)' }),
    })
    .nullable()
    .meta({ description: 'who; null for an attempt that did not authenticate' }),
  method: z.enum(AUDITED_METHODS),
  route: z.string().nullable().meta({ description: 'the route pattern, e.g. `/clients/:id`; null when no admin route matched' }),
  action: z.string().nullable().meta({ description: 'the operationId in the OpenAPI document, e.g. `updateClient`; null when no admin route matched' }),
  target_id: z.string().nullable().meta({ description: 'the `:id` of the route' }),
  status: z.int().meta({ description: 'the HTTP status answered (499: the caller went away before the answer)' }),
  source_ip: z.string().nullable().meta({ description: 'the client IP: the peer’s, or what a trusted proxy (TRUST_PROXY) says it is' }),
  count: z
    .int()
    .min(1)
    .meta({ description: 'attempts the event stands for: 1, or the refused unauthenticated attempts from source_ip in that minute (the first one shown)' }),
  created_id: z
    .string()
    .nullable()
    .meta({ description: 'what the write created: the new client’s `client_id`, the new user’s `id`, the new signing keys’ `kid`s (space-separated)' }),
});

// Lists

/** `limit` and `cursor` as documented; parsePage reads them (a query string holds only text). */
export const pageQuery = z.object({
  limit: z.int().min(1).max(MAX_PAGE_SIZE).optional().meta({ description: 'page size', default: DEFAULT_PAGE_SIZE }),
  cursor: z.string().optional().meta({ description: 'the `next_cursor` of the previous page' }),
});

export function pageView<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    next_cursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last page' }),
  });
}
