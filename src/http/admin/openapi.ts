/**
 * The admin API described as an OpenAPI 3.1 document, served at `GET /admin/openapi.json` (without
 * authentication: it describes the API and holds nothing secret). test/admin-openapi.test.ts sends a
 * request to every operation and checks the answers against it, and checks that every route the
 * router serves is documented here. The audit trail names each write by its `operationId`.
 */

import { MAX_PRUNE_AGE_SECONDS } from '../../admin/schemas.js';

// The slice of OpenAPI 3.1 this document uses.
export interface SchemaObject {
  $ref?: string;
  type?: string | string[];
  format?: string;
  description?: string;
  enum?: (string | number | boolean | null)[];
  const?: unknown;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean | SchemaObject;
  items?: SchemaObject;
  anyOf?: SchemaObject[];
  minProperties?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
  default?: unknown;
  writeOnly?: boolean;
  readOnly?: boolean;
  examples?: unknown[];
}

export interface MediaTypeObject {
  schema: SchemaObject;
}

export interface HeaderObject {
  description?: string;
  schema: SchemaObject;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject>;
  content?: Record<string, MediaTypeObject>;
}

export type ResponseOrRef = ResponseObject | { $ref: string };

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema: SchemaObject;
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security?: Record<string, string[]>[];
  parameters?: (ParameterObject | { $ref: string })[];
  requestBody?: { required: boolean; description?: string; content: Record<string, MediaTypeObject> };
  responses: Record<string, ResponseOrRef>;
}

export type HttpMethod = 'get' | 'post' | 'patch' | 'delete' | 'put';
export type PathItemObject = Partial<Record<HttpMethod, OperationObject>>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string; description?: string }[];
  security: Record<string, string[]>[];
  tags: { name: string; description: string }[];
  paths: Record<string, PathItemObject>;
  components: {
    securitySchemes: Record<string, { type: 'http'; scheme: 'bearer'; description: string }>;
    parameters: Record<string, ParameterObject>;
    schemas: Record<string, SchemaObject>;
    responses: Record<string, ResponseObject>;
  };
}

const ref = (kind: 'schemas' | 'responses' | 'parameters', name: string) => ({ $ref: `#/components/${kind}/${name}` });
const nullable = (schema: SchemaObject): SchemaObject => ({ anyOf: [schema, { type: 'null' }] });
const json = (schema: SchemaObject) => ({ 'application/json': { schema } });
const problemContent = { 'application/problem+json': { schema: ref('schemas', 'Problem') } };
const problem = (description: string): ResponseObject => ({ description, content: problemContent });

const redirectUris: SchemaObject = { type: 'array', items: { type: 'string', format: 'uri', maxLength: 2000, description: 'absolute, no fragment; https, http on a loopback address, or a custom scheme for native apps' }, maxItems: 50, description: 'an empty list means none' };
const uri: SchemaObject = { type: 'string', format: 'uri', maxLength: 2000 };

/** RFC 7591 metadata the admin API accepts (each optional on create, nullable on PATCH), plus `token_mode`. */
const clientMetadata: Record<string, SchemaObject> = {
  client_id: { type: 'string', pattern: '^[\\w.:-]{1,128}$', description: 'generated (a UUID) when absent; cannot be changed' },
  client_name: { type: 'string', minLength: 1, maxLength: 200 },
  redirect_uris: redirectUris,
  post_logout_redirect_uris: redirectUris,
  grant_types: { type: 'array', items: { type: 'string', enum: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'] }, maxItems: 4 },
  response_types: { type: 'array', items: { type: 'string', enum: ['code', 'none'] }, maxItems: 2 },
  token_endpoint_auth_method: {
    type: 'string',
    enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    default: 'client_secret_basic',
    description: 'client_secret_basic and client_secret_post make a confidential client with a generated secret; client_secret_jwt is refused (secrets are stored hashed)',
  },
  scope: { type: 'string', maxLength: 2000, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+( [\\x21\\x23-\\x5B\\x5D-\\x7E]+)*$', description: 'space-separated scopes the client may be granted' },
  token_mode: { type: 'string', enum: ['reference', 'jwt', 'stateless'], description: 'the server default (TOKEN_MODE) when absent' },
  application_type: { type: 'string', enum: ['web', 'native'], default: 'web' },
  client_uri: uri,
  logo_uri: uri,
  policy_uri: uri,
  tos_uri: uri,
  jwks_uri: uri,
  jwks: { type: 'object', properties: { keys: { type: 'array', items: { type: 'object' }, maxItems: 20 } }, required: ['keys'], additionalProperties: false },
  contacts: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 200 }, maxItems: 20 },
  software_id: { type: 'string', minLength: 1, maxLength: 200 },
  software_version: { type: 'string', minLength: 1, maxLength: 200 },
  default_max_age: { type: 'integer', exclusiveMinimum: 0 },
  require_auth_time: { type: 'boolean' },
  id_token_signed_response_alg: { type: 'string', enum: ['RS256', 'PS256', 'ES256', 'EdDSA'] },
};

const pathId = (what: string): ParameterObject => ({ name: 'id', in: 'path', required: true, description: `the ${what}'s id`, schema: { type: 'string' } });

const AUTH_ERRORS = { '401': ref('responses', 'Unauthorized'), '403': ref('responses', 'Forbidden') };
/** Every POST and PATCH reads its body as JSON (up to 100 kB), even when it expects none. */
const BODY_ERRORS = { '400': ref('responses', 'BadRequest'), '413': ref('responses', 'PayloadTooLarge'), '415': ref('responses', 'UnsupportedMediaType') };
const LIST_ERRORS = { '400': ref('responses', 'BadRequest'), ...AUTH_ERRORS };
const NOT_FOUND = { '404': ref('responses', 'NotFound') };
const PAGE_PARAMETERS = [ref('parameters', 'limit'), ref('parameters', 'cursor')];

const listOf = (item: string): SchemaObject => ({
  type: 'object',
  properties: { items: { type: 'array', items: ref('schemas', item) }, next_cursor: { type: ['string', 'null'], description: 'pass as `cursor` for the next page; null on the last page' } },
  required: ['items', 'next_cursor'],
});

/** A subject, client_id or grant_id in a bulk revocation. */
const IDENTIFIER = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1F\\x7F]+$' } as const;

export const adminOpenApi: OpenApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Tally admin API',
    version: '1',
    description:
      'Clients, users and the token ledger of a Tally server. JSON in, JSON out; errors are RFC 9457 problems (`application/problem+json`) with a stable `code`. ' +
      'Request bodies are at most 100 kB, unknown fields and wrong types are refused with the field named, and nothing is half-written. ' +
      'Every write (POST, PATCH, DELETE), whatever its outcome, is recorded in the audit trail (`GET /audit`).',
  },
  servers: [{ url: '/admin', description: 'under the issuer' }],
  security: [{ bearer: [] }],
  tags: [
    { name: 'clients', description: 'OAuth clients (RFC 7591 metadata plus `token_mode`)' },
    { name: 'users', description: 'end users who sign in on the login page' },
    { name: 'tokens', description: 'the token ledger: metadata of every token issued, never a token value' },
    { name: 'audit', description: 'who changed what, when, with what outcome' },
    { name: 'meta', description: 'this document' },
  ],
  paths: {
    '/clients': {
      post: {
        operationId: 'createClient',
        summary: 'Register a client',
        tags: ['clients'],
        requestBody: { required: true, content: json(ref('schemas', 'ClientCreate')) },
        responses: {
          '201': { description: 'the client; `client_secret` for a confidential client, returned this once only', content: json(ref('schemas', 'Client')) },
          '409': problem('the client_id is taken (`duplicate_client_id`)'),
          ...BODY_ERRORS,
          ...AUTH_ERRORS,
        },
      },
      get: {
        operationId: 'listClients',
        summary: 'List clients, oldest first',
        tags: ['clients'],
        parameters: PAGE_PARAMETERS,
        responses: { '200': { description: 'a page of clients, without secrets', content: json(listOf('Client')) }, ...LIST_ERRORS },
      },
    },
    '/clients/{id}': {
      get: {
        operationId: 'getClient',
        summary: 'Read a client',
        tags: ['clients'],
        parameters: [pathId('client')],
        responses: { '200': { description: 'the client, without its secret', content: json(ref('schemas', 'Client')) }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
      patch: {
        operationId: 'updateClient',
        summary: 'Change some of a client’s metadata',
        description: 'Fields absent are kept, `null` removes a field; the result is validated as a whole. Changing `token_mode` never invalidates tokens already issued.',
        tags: ['clients'],
        parameters: [pathId('client')],
        requestBody: { required: true, content: json(ref('schemas', 'ClientPatch')) },
        responses: {
          '200': { description: 'the client; `client_secret` only when the change made a public client confidential', content: json(ref('schemas', 'Client')) },
          ...BODY_ERRORS,
          ...AUTH_ERRORS,
          ...NOT_FOUND,
        },
      },
      delete: {
        operationId: 'deleteClient',
        summary: 'Delete a client',
        description: 'Every token of the client becomes inactive.',
        tags: ['clients'],
        parameters: [pathId('client')],
        responses: { '204': { description: 'deleted' }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/clients/{id}/secret': {
      post: {
        operationId: 'rotateClientSecret',
        summary: 'Replace a client’s secret',
        description: 'The old secret stops working at once. Takes no body.',
        tags: ['clients'],
        parameters: [pathId('client')],
        responses: {
          '200': { description: 'the new secret, shown this once only', content: json(ref('schemas', 'ClientSecret')) },
          ...BODY_ERRORS,
          ...AUTH_ERRORS,
          ...NOT_FOUND,
          '409': problem('the client authenticates without a secret (`no_secret`)'),
        },
      },
    },
    '/users': {
      post: {
        operationId: 'createUser',
        summary: 'Create a user',
        tags: ['users'],
        requestBody: { required: true, content: json(ref('schemas', 'UserCreate')) },
        responses: {
          '201': { description: 'the user; `id` is the `sub` of its tokens', content: json(ref('schemas', 'User')) },
          ...BODY_ERRORS,
          ...AUTH_ERRORS,
          '409': problem('the username is taken (`duplicate_username`)'),
        },
      },
    },
    '/users/{id}': {
      get: {
        operationId: 'getUser',
        summary: 'Read a user',
        tags: ['users'],
        parameters: [pathId('user')],
        responses: { '200': { description: 'the user', content: json(ref('schemas', 'User')) }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
      delete: {
        operationId: 'deleteUser',
        summary: 'Delete a user',
        description: 'Every token of the user becomes inactive.',
        tags: ['users'],
        parameters: [pathId('user')],
        responses: { '204': { description: 'deleted' }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/tokens': {
      get: {
        operationId: 'listTokens',
        summary: 'List ledger entries, newest first',
        tags: ['tokens'],
        parameters: [
          { name: 'subject', in: 'query', description: 'the `sub` (a user id, or a client id for client-credentials tokens)', schema: { type: 'string', minLength: 1, maxLength: 200 } },
          { name: 'client_id', in: 'query', schema: { type: 'string', minLength: 1, maxLength: 200 } },
          { name: 'status', in: 'query', schema: ref('schemas', 'TokenStatus') },
          { name: 'type', in: 'query', schema: ref('schemas', 'TokenType') },
          ...PAGE_PARAMETERS,
        ],
        responses: { '200': { description: 'a page of ledger entries; never a token value or payload', content: json(listOf('LedgerEntry')) }, ...LIST_ERRORS },
      },
    },
    '/tokens/{id}': {
      get: {
        operationId: 'getToken',
        summary: 'Read a ledger entry',
        tags: ['tokens'],
        parameters: [pathId('ledger entry')],
        responses: { '200': { description: 'the entry', content: json(ref('schemas', 'LedgerEntry')) }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/tokens/{id}/revoke': {
      post: {
        operationId: 'revokeToken',
        summary: 'Revoke one token',
        description: 'Takes no body.',
        tags: ['tokens'],
        parameters: [pathId('ledger entry')],
        responses: { '200': { description: 'the entry, `status: "revoked"`', content: json(ref('schemas', 'LedgerEntry')) }, ...BODY_ERRORS, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/revocations': {
      post: {
        operationId: 'revokeTokens',
        summary: 'Revoke every token of a subject, client and/or grant',
        description: 'Every matching token of every mode issued at or before now (to the second) becomes inactive; tokens issued later are unaffected.',
        tags: ['tokens'],
        requestBody: { required: true, content: json(ref('schemas', 'RevocationRequest')) },
        responses: { '200': { description: 'how many ledger entries were revoked', content: json(ref('schemas', 'RevocationResult')) }, ...BODY_ERRORS, ...AUTH_ERRORS },
      },
    },
    '/prune': {
      post: {
        operationId: 'pruneLedger',
        summary: 'Delete entries of tokens expired long enough ago',
        description: 'Never deletes the entry of an unexpired token; a pruned token never becomes active again. The body may be omitted.',
        tags: ['tokens'],
        requestBody: { required: false, content: json(ref('schemas', 'PruneRequest')) },
        responses: { '200': { description: 'how many rows were deleted', content: json(ref('schemas', 'PruneResult')) }, ...BODY_ERRORS, ...AUTH_ERRORS },
      },
    },
    '/audit': {
      get: {
        operationId: 'listAuditEvents',
        summary: 'List admin writes, newest first',
        description: 'Every POST, PATCH and DELETE under /admin, including refused and unauthenticated attempts. Bodies, secrets, passwords and tokens are never recorded.',
        tags: ['audit'],
        parameters: PAGE_PARAMETERS,
        responses: { '200': { description: 'a page of audit events', content: json(listOf('AuditEvent')) }, ...LIST_ERRORS },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        tags: ['meta'],
        security: [],
        responses: { '200': { description: 'the OpenAPI 3.1 document of the admin API', content: json({ type: 'object', required: ['openapi', 'info', 'paths'] }) } },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY, or an access token this server issued with scope `admin`' },
    },
    parameters: {
      limit: { name: 'limit', in: 'query', description: 'page size', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
      cursor: { name: 'cursor', in: 'query', description: 'the `next_cursor` of the previous page', schema: { type: 'string' } },
    },
    schemas: {
      Problem: {
        type: 'object',
        description: 'RFC 9457 problem details',
        properties: {
          type: { type: 'string', description: '`urn:tally:problem:<code>`' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
          code: { type: 'string', description: 'stable: `invalid_request`, `unknown_field`, `invalid_json`, `duplicate_key`, `invalid_client_metadata`, `unauthenticated`, `invalid_token`, `insufficient_scope`, `not_found`, `no_secret`, `duplicate_username`, `body_too_large`, `unsupported_media_type`, `internal_error`, `database_unavailable` (503, with Retry-After)' },
          field: { type: 'string', description: 'the offending input, when there is one' },
        },
        required: ['type', 'title', 'status', 'detail', 'code'],
      },
      ClientCreate: { type: 'object', properties: clientMetadata, additionalProperties: false },
      ClientPatch: {
        type: 'object',
        description: 'any subset of the metadata; `null` removes a field',
        properties: Object.fromEntries(Object.entries(clientMetadata).map(([name, schema]) => [name, nullable(schema)])),
        additionalProperties: false,
      },
      Client: {
        type: 'object',
        description: 'the registered metadata (RFC 7591), as stored',
        properties: {
          ...clientMetadata,
          client_id: { type: 'string' },
          client_id_issued_at: { type: 'integer', description: 'seconds since the epoch' },
          client_secret: { type: 'string', description: 'only in the answer that created it' },
          client_secret_expires_at: { type: 'integer', const: 0, description: 'with `client_secret`: it does not expire' },
        },
        required: ['client_id', 'client_id_issued_at'],
      },
      ClientSecret: { type: 'object', properties: { client_secret: { type: 'string' } }, required: ['client_secret'] },
      UserCreate: {
        type: 'object',
        properties: {
          username: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[\\w.@+-]+$' },
          password: { type: 'string', minLength: 8, maxLength: 1024, writeOnly: true },
          email: { type: 'string', format: 'email', maxLength: 254 },
          name: { type: 'string', minLength: 1, maxLength: 200 },
        },
        required: ['username', 'password'],
        additionalProperties: false,
      },
      User: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'the `sub` of the user’s tokens' },
          username: { type: 'string' },
          email: { type: ['string', 'null'] },
          name: { type: ['string', 'null'] },
          created_at: { type: 'string', format: 'date-time' },
        },
        required: ['id', 'username', 'email', 'name', 'created_at'],
      },
      TokenType: { type: 'string', enum: ['access_token', 'refresh_token', 'authorization_code', 'device_code'] },
      TokenStatus: { type: 'string', enum: ['valid', 'redeemed', 'revoked', 'inactive'] },
      LedgerEntry: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          type: ref('schemas', 'TokenType'),
          format: { type: 'string', enum: ['reference', 'jwt'] },
          status: ref('schemas', 'TokenStatus'),
          subject: { type: ['string', 'null'] },
          client_id: { type: 'string' },
          grant_id: { type: ['string', 'null'] },
          scope: { type: ['string', 'null'] },
          audience: { type: ['string', 'null'] },
          created_at: { type: 'string', format: 'date-time' },
          expires_at: { type: 'string', format: 'date-time' },
          redeemed_at: { type: ['string', 'null'], format: 'date-time' },
        },
        required: ['id', 'type', 'format', 'status', 'subject', 'client_id', 'grant_id', 'scope', 'audience', 'created_at', 'expires_at', 'redeemed_at'],
      },
      RevocationRequest: {
        type: 'object',
        description: 'at least one field; a token matches when it matches every field given',
        properties: { subject: IDENTIFIER, client_id: IDENTIFIER, grant_id: IDENTIFIER },
        minProperties: 1,
        additionalProperties: false,
      },
      RevocationResult: { type: 'object', properties: { revoked: { type: 'integer', minimum: 0 } }, required: ['revoked'] },
      PruneRequest: { type: 'object', properties: { older_than_seconds: { type: 'integer', minimum: 0, maximum: MAX_PRUNE_AGE_SECONDS, default: 0 } }, additionalProperties: false },
      PruneResult: { type: 'object', properties: { deleted: { type: 'integer', minimum: 0 } }, required: ['deleted'] },
      AuditEvent: {
        type: 'object',
        properties: {
          id: { type: 'string', description: 'UUIDv7' },
          created_at: { type: 'string', format: 'date-time', description: 'when the answer was sent' },
          actor: {
            type: ['object', 'null'],
            description: 'who; null for an attempt that did not authenticate',
            properties: { kind: { type: 'string', enum: ['api_key', 'token'] }, id: { type: 'string', description: '`api-key`, or the client (`client_id/sub` for a user’s token)' } },
            required: ['kind', 'id'],
          },
          method: { type: 'string', enum: ['POST', 'PUT', 'PATCH', 'DELETE'] },
          route: { type: ['string', 'null'], description: 'the route pattern, e.g. `/clients/:id`; null when no admin route matched' },
          action: { type: ['string', 'null'], description: 'the operationId in this document, e.g. `updateClient`; null when no admin route matched' },
          target_id: { type: ['string', 'null'], description: 'the `:id` of the route' },
          status: { type: 'integer', description: 'the HTTP status answered (499: the caller went away before the answer)' },
        },
        required: ['id', 'created_at', 'actor', 'method', 'route', 'action', 'target_id', 'status'],
      },
    },
    responses: {
      BadRequest: problem('invalid input: unknown field, wrong type, bad JSON, duplicate key, bad `limit` or `cursor`; `field` names it'),
      Unauthorized: {
        description: 'missing or wrong credentials (`unauthenticated`, `invalid_token`)',
        headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
        content: problemContent,
      },
      Forbidden: problem('a valid access token without scope `admin` (`insufficient_scope`)'),
      NotFound: problem('no such resource (`not_found`)'),
      PayloadTooLarge: problem('a body over 100 kB (`body_too_large`)'),
      UnsupportedMediaType: problem('a body that is not `application/json` (`unsupported_media_type`)'),
    },
  },
};

/** The document as served, with the server URL made absolute under the issuer. */
export function openApiFor(issuer: string): OpenApiDocument {
  return { ...adminOpenApi, servers: [{ url: `${issuer}/admin`, description: 'this server' }] };
}

export interface DocumentedRoute {
  method: string;
  /** Express form: `/clients/:id`. */
  route: string;
  operationId: string;
  match: (path: string) => Record<string, string> | undefined;
}

/** Every documented operation, with a matcher that mirrors Express routing (case-insensitive, optional trailing slash). */
export function documentedRoutes(document: OpenApiDocument = adminOpenApi): DocumentedRoute[] {
  return Object.entries(document.paths).flatMap(([path, item]) => {
    const names: string[] = [];
    const source = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    const regex = new RegExp(`^${source}/?$`, 'i');
    const match = (candidate: string) => {
      const found = regex.exec(candidate);
      if (!found) return undefined;
      return Object.fromEntries(
        names.map((name, i) => {
          const raw = found[i + 1]!;
          try {
            return [name, decodeURIComponent(raw)];
          } catch {
            return [name, raw];
          }
        }),
      );
    };
    return Object.entries(item).map(([method, operation]) => ({ method: method.toUpperCase(), route: path.replace(/\{(\w+)\}/g, ':$1'), operationId: operation.operationId, match }));
  });
}
