/**
 * The admin API described as an OpenAPI 3.1 document, served at `GET /admin/openapi.json` (without
 * authentication: it describes the API and holds nothing secret). The operations are written here;
 * every schema is generated from the admin layer's zod schemas (admin/json-schemas.ts), the ones that
 * parse the requests. test/admin-openapi.test.ts checks that every route the router serves is
 * documented here and sends a request to every operation, checking the answers against the document.
 * The audit trail names each write by its `operationId`.
 */

import { adminJsonSchemas, type SchemaName } from '../../admin/json-schemas.js';
import type { OpenApiDocument, ParameterObject, ResponseObject, SchemaObject } from './openapi-types.js';
import { PROBLEM_TITLES } from './problem.js';

export type * from './openapi-types.js';

const ref = (kind: 'schemas' | 'responses' | 'parameters', name: string) => ({ $ref: `#/components/${kind}/${name}` });
const schemas = adminJsonSchemas((name) => ref('schemas', name).$ref) as Record<SchemaName, SchemaObject>;

const json = (name: SchemaName) => ({ 'application/json': { schema: ref('schemas', name) } });
const problemContent = { 'application/problem+json': { schema: ref('schemas', 'Problem') } };
const problem = (description: string): ResponseObject => ({ description, content: problemContent });

/** The query parameters an object schema of the admin layer describes, one per property. */
function queryParameters(name: SchemaName): ParameterObject[] {
  const { properties = {} } = schemas[name];
  return Object.entries(properties).map(([key, { description, ...schema }]) => ({
    name: key,
    in: 'query',
    ...(typeof description === 'string' ? { description } : {}),
    schema,
  }));
}

const pathId = (what: string): ParameterObject => ({ name: 'id', in: 'path', required: true, description: `the ${what}'s id`, schema: { type: 'string' } });

const AUTH_ERRORS = { '401': ref('responses', 'Unauthorized'), '403': ref('responses', 'Forbidden') };
/** Every POST and PATCH reads its body as JSON (up to 100 kB), even when it expects none. */
const BODY_ERRORS = { '400': ref('responses', 'BadRequest'), '413': ref('responses', 'PayloadTooLarge'), '415': ref('responses', 'UnsupportedMediaType') };
const LIST_ERRORS = { '400': ref('responses', 'BadRequest'), ...AUTH_ERRORS };
const NOT_FOUND = { '404': ref('responses', 'NotFound') };
const PAGE_PARAMETERS = [ref('parameters', 'limit'), ref('parameters', 'cursor')];

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
    { name: 'keys', description: 'the signing keys of tokens and ID tokens, as the JWKS publishes them' },
    { name: 'stats', description: 'numbers for the console’s dashboard' },
    { name: 'audit', description: 'who changed what, when, with what outcome' },
    { name: 'meta', description: 'this document' },
  ],
  paths: {
    '/clients': {
      post: {
        operationId: 'createClient',
        summary: 'Register a client',
        tags: ['clients'],
        requestBody: { required: true, content: json('ClientCreate') },
        responses: {
          '201': { description: 'the client; `client_secret` for a confidential client, returned this once only', content: json('Client') },
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
        responses: { '200': { description: 'a page of clients, without secrets', content: json('ClientList') }, ...LIST_ERRORS },
      },
    },
    '/clients/{id}': {
      get: {
        operationId: 'getClient',
        summary: 'Read a client',
        tags: ['clients'],
        parameters: [pathId('client')],
        responses: { '200': { description: 'the client, without its secret', content: json('Client') }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
      patch: {
        operationId: 'updateClient',
        summary: 'Change some of a client’s metadata',
        description:
          'Fields absent are kept, `null` removes a field; the result is validated as a whole. Changing `token_mode` never invalidates tokens already issued.',
        tags: ['clients'],
        parameters: [pathId('client')],
        requestBody: { required: true, content: json('ClientPatch') },
        responses: {
          '200': { description: 'the client; `client_secret` only when the change made a public client confidential', content: json('Client') },
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
          '200': { description: 'the new secret, shown this once only', content: json('ClientSecret') },
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
        requestBody: { required: true, content: json('UserCreate') },
        responses: {
          '201': { description: 'the user; `id` is the `sub` of its tokens', content: json('User') },
          ...BODY_ERRORS,
          ...AUTH_ERRORS,
          '409': problem('the username is taken (`duplicate_username`)'),
        },
      },
      get: {
        operationId: 'listUsers',
        summary: 'List or search users, oldest first',
        tags: ['users'],
        parameters: [...queryParameters('UserQuery'), ...PAGE_PARAMETERS],
        responses: { '200': { description: 'a page of users; never a password hash', content: json('UserList') }, ...LIST_ERRORS },
      },
    },
    '/users/{id}': {
      get: {
        operationId: 'getUser',
        summary: 'Read a user',
        tags: ['users'],
        parameters: [pathId('user')],
        responses: { '200': { description: 'the user', content: json('User') }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
      patch: {
        operationId: 'updateUser',
        summary: 'Change a user’s email, name, roles, password or disabled state',
        description: '`disabled: true` refuses the user’s sign-ins and makes every token of theirs inactive; re-enabling revives none of them.',
        tags: ['users'],
        parameters: [pathId('user')],
        requestBody: { required: true, content: json('UserPatch') },
        responses: { '200': { description: 'the user', content: json('User') }, ...BODY_ERRORS, ...AUTH_ERRORS, ...NOT_FOUND },
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
    '/users/{id}/factors': {
      delete: {
        operationId: 'resetUserFactors',
        summary: 'Remove a user’s second factors',
        description:
          'For a lost device: removes the authenticator and the recovery codes; the next sign-in asks the password alone (a client with require_mfa then leads the user to enrol again).',
        tags: ['users'],
        parameters: [pathId('user')],
        responses: { '204': { description: 'the factors are removed' }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/users/{id}/unlock': {
      post: {
        operationId: 'unlockUser',
        summary: 'Clear a user’s failed sign-ins',
        description: 'Ends a lockout after consecutive failed sign-ins at once; the next attempt counts from zero. Takes no body.',
        tags: ['users'],
        parameters: [pathId('user')],
        responses: { '204': { description: 'the failures are cleared' }, ...BODY_ERRORS, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/tokens': {
      get: {
        operationId: 'listTokens',
        summary: 'List ledger entries, newest first',
        tags: ['tokens'],
        parameters: [...queryParameters('TokenQuery'), ...PAGE_PARAMETERS],
        responses: { '200': { description: 'a page of ledger entries; never a token value or payload', content: json('LedgerEntryList') }, ...LIST_ERRORS },
      },
    },
    '/tokens/{id}': {
      get: {
        operationId: 'getToken',
        summary: 'Read a ledger entry',
        tags: ['tokens'],
        parameters: [pathId('ledger entry')],
        responses: { '200': { description: 'the entry', content: json('LedgerEntry') }, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/tokens/{id}/revoke': {
      post: {
        operationId: 'revokeToken',
        summary: 'Revoke one token',
        description: 'Takes no body.',
        tags: ['tokens'],
        parameters: [pathId('ledger entry')],
        responses: { '200': { description: 'the entry, `status: "revoked"`', content: json('LedgerEntry') }, ...BODY_ERRORS, ...AUTH_ERRORS, ...NOT_FOUND },
      },
    },
    '/revocations': {
      post: {
        operationId: 'revokeTokens',
        summary: 'Revoke every token of a subject, client and/or grant',
        description: 'Every matching token of every mode issued at or before now (to the second) becomes inactive; tokens issued later are unaffected.',
        tags: ['tokens'],
        requestBody: { required: true, content: json('RevocationRequest') },
        responses: { '200': { description: 'how many ledger entries were revoked', content: json('RevocationResult') }, ...BODY_ERRORS, ...AUTH_ERRORS },
      },
    },
    '/revocations/preview': {
      get: {
        operationId: 'previewRevocation',
        summary: 'Count what a bulk revocation would revoke',
        description: 'Takes the fields of `POST /revocations` (at least one) as query parameters; changes nothing.',
        tags: ['tokens'],
        parameters: queryParameters('RevocationPreviewQuery'),
        responses: { '200': { description: 'the count', content: json('RevocationPreview') }, '400': ref('responses', 'BadRequest'), ...AUTH_ERRORS },
      },
    },
    '/revocations/stream': {
      get: {
        operationId: 'streamRevocations',
        summary: 'The live revocation feed',
        description:
          'The server-sent events of `$ISSUER/revocations/stream` (an event `revocation` per revocation, its `id` resumable with `Last-Event-ID`), for an admin credential.',
        tags: ['tokens'],
        parameters: [
          { name: 'Last-Event-ID', in: 'header', description: 'the `id` of the last event received', schema: { type: 'string', pattern: '^\\d{1,10}$' } },
        ],
        responses: {
          '200': { description: 'the event stream, open until the caller leaves', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          '400': ref('responses', 'BadRequest'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/prune': {
      post: {
        operationId: 'pruneLedger',
        summary: 'Delete entries of tokens expired long enough ago',
        description: 'Never deletes the entry of an unexpired token; a pruned token never becomes active again. The body may be omitted.',
        tags: ['tokens'],
        requestBody: { required: false, content: json('PruneRequest') },
        responses: { '200': { description: 'how many rows were deleted', content: json('PruneResult') }, ...BODY_ERRORS, ...AUTH_ERRORS },
      },
    },
    '/keys': {
      get: {
        operationId: 'listKeys',
        summary: 'List the signing keys, newest first',
        description: 'Every signing key with its status; never private material. One page holds them all.',
        tags: ['keys'],
        responses: { '200': { description: 'the keys', content: json('SigningKeyList') }, ...AUTH_ERRORS },
      },
    },
    '/keys/rotate': {
      post: {
        operationId: 'rotateKeys',
        summary: 'Add a signing key per algorithm',
        description:
          'As `tally keys rotate`: the new keys are published at once and sign after the activation delay (KEY_ACTIVATION_DELAY); the older ones stay published until every token they signed has expired. Takes no body, or `{}`.',
        tags: ['keys'],
        requestBody: { required: false, content: json('KeyRotationRequest') },
        responses: { '201': { description: 'the new keys', content: json('SigningKeyRotation') }, ...BODY_ERRORS, ...AUTH_ERRORS },
      },
    },
    '/stats': {
      get: {
        operationId: 'getStats',
        summary: 'Access tokens issued and revoked per token mode over a recent window',
        tags: ['stats'],
        parameters: queryParameters('StatsQuery'),
        responses: {
          '200': { description: 'counts per time bucket and in total', content: json('Stats') },
          '400': ref('responses', 'BadRequest'),
          ...AUTH_ERRORS,
        },
      },
    },
    '/audit': {
      get: {
        operationId: 'listAuditEvents',
        summary: 'List admin writes, newest first',
        description:
          'Every POST, PATCH and DELETE under /admin, including refused and unauthenticated attempts. Bodies, secrets, passwords and tokens are never recorded.',
        tags: ['audit'],
        parameters: PAGE_PARAMETERS,
        responses: { '200': { description: 'a page of audit events', content: json('AuditEventList') }, ...LIST_ERRORS },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        tags: ['meta'],
        security: [],
        responses: {
          '200': {
            description: 'the OpenAPI 3.1 document of the admin API',
            content: { 'application/json': { schema: { type: 'object', required: ['openapi', 'info', 'paths'] } } },
          },
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description: 'ADMIN_API_KEY, or an access token this server issued with scope `admin` for the resource `$ISSUER/admin`',
      },
    },
    // Described by the admin layer's PageQuery, shared by every list.
    parameters: Object.fromEntries(queryParameters('PageQuery').map((parameter) => [parameter.name, parameter])),
    schemas: {
      Problem: {
        type: 'object',
        description: 'RFC 9457 problem details',
        properties: {
          type: { type: 'string', description: '`urn:tally:problem:<code>`' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
          code: { type: 'string', enum: Object.keys(PROBLEM_TITLES), description: 'stable; `database_unavailable` is a 503 with Retry-After' },
          field: { type: 'string', description: 'the offending input, when there is one' },
        },
        required: ['type', 'title', 'status', 'detail', 'code'],
      },
      // Described by the parameters they became.
      ...Object.fromEntries(
        Object.entries(schemas).filter(([name]) => !['TokenQuery', 'UserQuery', 'PageQuery', 'RevocationPreviewQuery', 'StatsQuery'].includes(name)),
      ),
    },
    responses: {
      BadRequest: problem('invalid input: unknown field, wrong type, bad JSON, duplicate key, bad `limit` or `cursor`; `field` names it'),
      Unauthorized: {
        description: 'missing or wrong credentials (`unauthenticated`, `invalid_token`)',
        headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
        content: problemContent,
      },
      Forbidden: problem('a valid access token without admin rights: no scope `admin`, or an audience other than `$ISSUER/admin` (`insufficient_scope`)'),
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
