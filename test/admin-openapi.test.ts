import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import express, { type Router } from 'express';
import { recordAdminWrites } from '../src/http/admin/audit.ts';
import { createAdminRouter } from '../src/http/admin/index.ts';
import type { OpenApiDocument, OperationObject, ResponseObject, SchemaObject } from '../src/http/admin/openapi.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { REDIRECT_URI } from './helpers/fixtures.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let doc: OpenApiDocument;
let nonAdminToken: string;
let nonAdminClientId: string;
let counter = 0;
const unique = (prefix: string) => `${prefix}${process.pid}x${++counter}x${Date.now().toString(36)}`;

// ---------------------------------------------------------------------------------------------
// A tiny JSON Schema checker: $ref, anyOf, type (incl. integer and null), enum, const, required,
// properties, additionalProperties: false, minProperties and items. Enough to hold the answers (and
// the requests) to what the document, generated from the zod schemas, promises.

function resolveRef<T>(node: T | { $ref: string }): T {
  let current: unknown = node;
  while (current && typeof current === 'object' && '$ref' in current) {
    const path = (current as { $ref: string }).$ref.replace(/^#\//, '').split('/');
    current = path.reduce<any>((object, key) => object?.[key], doc);
    assert.ok(current, `unresolvable $ref ${(node as { $ref: string }).$ref}`);
  }
  return current as T;
}

function hasType(type: string, value: unknown): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    default:
      return typeof value === type;
  }
}

function schemaErrors(schemaOrRef: SchemaObject, value: unknown, at = '$'): string[] {
  const schema = resolveRef(schemaOrRef);
  if (schema.anyOf) return schema.anyOf.some((s) => schemaErrors(s, value, at).length === 0) ? [] : [`${at}: matches none of anyOf (${JSON.stringify(value)})`];
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type);
    if (!types.some((t) => hasType(t, value))) return [`${at}: expected ${types.join(' or ')}, got ${JSON.stringify(value)}`];
  }
  if (schema.enum && !schema.enum.includes(value as never)) return [`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`];
  if ('const' in schema && value !== schema.const) return [`${at}: expected ${JSON.stringify(schema.const)}`];
  const errors: string[] = [];
  if (hasType('object', value)) {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) if (!(name in object)) errors.push(`${at}.${name}: required`);
    for (const [name, sub] of Object.entries(schema.properties ?? {})) if (name in object) errors.push(...schemaErrors(sub, object[name], `${at}.${name}`));
    if (schema.additionalProperties === false)
      for (const name of Object.keys(object)) if (!(name in (schema.properties ?? {}))) errors.push(`${at}.${name}: not a documented field`);
    if (typeof schema.minProperties === 'number' && Object.keys(object).length < schema.minProperties)
      errors.push(`${at}: fewer than ${schema.minProperties} fields`);
  }
  if (Array.isArray(value) && schema.items) for (const [i, item] of value.entries()) errors.push(...schemaErrors(schema.items, item, `${at}[${i}]`));
  return errors;
}

test('the schema checker itself: required, types, null, $ref and nesting', () => {
  const served = doc;
  doc = { components: { schemas: { N: { type: 'integer' } } } } as unknown as OpenApiDocument;
  const schema: SchemaObject = {
    type: 'object',
    properties: { a: { $ref: '#/components/schemas/N' }, b: { type: ['string', 'null'] }, c: { type: 'array', items: { type: 'object', required: ['x'] } } },
    required: ['a', 'b'],
  };
  assert.deepEqual(schemaErrors(schema, { a: 1, b: null, c: [{ x: 1 }] }), []);
  assert.equal(schemaErrors(schema, { a: 1.5, b: null }).length, 1);
  assert.equal(schemaErrors(schema, { a: 1 }).length, 1);
  assert.equal(schemaErrors(schema, { a: 1, b: 2 }).length, 1);
  assert.equal(schemaErrors(schema, { a: 1, b: 'x', c: [{}] }).length, 1);
  assert.equal(schemaErrors(schema, []).length, 1);
  const closed: SchemaObject = { type: 'object', properties: { a: {} }, additionalProperties: false, minProperties: 1 };
  assert.deepEqual(schemaErrors(closed, { a: 1 }), []);
  assert.equal(schemaErrors(closed, { a: 1, b: 2 }).length, 1);
  assert.equal(schemaErrors(closed, {}).length, 1);
  doc = served;
});

// ---------------------------------------------------------------------------------------------

interface Operation {
  method: string;
  path: string;
  operation: OperationObject;
}

function operations(): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ method: method.toUpperCase(), path, operation: operation! })),
  );
}

function operation(operationId: string): Operation {
  const found = operations().find((o) => o.operation.operationId === operationId);
  assert.ok(found, `operation ${operationId} is documented`);
  return found;
}

interface Answer {
  status: number;
  contentType: string;
  body: any;
  text: string;
}

interface Call {
  id?: string;
  query?: Record<string, string>;
  /** A value to send as JSON, or a raw string with `contentType`. */
  body?: unknown;
  contentType?: string;
  /** Bearer credential; null sends none. */
  token?: string | null;
}

async function send(op: Operation, call: Call = {}): Promise<Answer> {
  let path = op.path.replace('{id}', encodeURIComponent(call.id ?? ''));
  if (call.query) path += `?${new URLSearchParams(call.query)}`;
  const token = call.token === undefined ? ADMIN_KEY : call.token;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let body: string | undefined;
  if (call.body !== undefined) {
    body = typeof call.body === 'string' && call.contentType ? call.body : JSON.stringify(call.body);
    headers['content-type'] = call.contentType ?? 'application/json';
  }
  const response = await fetch(`${server.url}/admin${path}`, { method: op.method, headers, body });
  const text = await response.text();
  const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  return { status: response.status, contentType, text, body: text && /json/.test(contentType) ? JSON.parse(text) : undefined };
}

/** The JSON schema of an operation's request body. */
function requestSchema(op: Operation): SchemaObject {
  const schema = op.operation.requestBody?.content['application/json']?.schema;
  assert.ok(schema, `${op.operation.operationId} documents a JSON body`);
  return schema;
}

/** Sends the call and asserts the answer is one the document gives for this operation, in the documented shape. */
async function conforms(op: Operation, call: Call = {}, expected?: number): Promise<Answer> {
  const answer = await send(op, call);
  const label = `${op.method} ${op.path} (${op.operation.operationId}) → ${answer.status} ${answer.text.slice(0, 300)}`;
  if (expected !== undefined) assert.equal(answer.status, expected, label);
  const documented = op.operation.responses[String(answer.status)];
  assert.ok(documented, `undocumented status: ${label}; documented: ${Object.keys(op.operation.responses).join(', ')}`);
  const response = resolveRef<ResponseObject>(documented);
  if (!response.content) {
    assert.equal(answer.text, '', `${label}: documented without a body`);
    return answer;
  }
  const media = response.content[answer.contentType];
  assert.ok(media, `${label}: content type ${answer.contentType} not documented (${Object.keys(response.content).join(', ')})`);
  assert.deepEqual(schemaErrors(media.schema, answer.body), [], label);
  return answer;
}

/** The routes the router really serves, from its stack: `METHOD /path` (Express form). */
function servedRoutes(): string[] {
  // Construction only wires handlers; a do-nothing stand-in for every dependency is enough.
  const stub: any = new Proxy(() => {}, { get: (_target, key) => (key === 'then' ? undefined : stub), apply: () => stub });
  const router = createAdminRouter({ provider: stub, runtime: stub, revocationStreams: stub }) as Router & { stack: any[] };
  const routes: string[] = [];
  for (const layer of router.stack) {
    assert.ok(!layer.handle?.stack, 'a nested router under /admin: teach servedRoutes() to walk it');
    if (!layer.route) continue;
    for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all')) routes.push(`${method.toUpperCase()} ${layer.route.path}`);
  }
  return routes.sort();
}

/** A client-credentials access token that the server issued (to a new client) without scope `admin`. */
async function issueNonAdminToken(): Promise<{ token: string; clientId: string }> {
  const client = await admin(server, 'POST', '/clients', {
    client_name: 'no admin',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['client_credentials'],
    response_types: [],
    scope: 'api:read',
    token_mode: 'reference',
  });
  assert.equal(client.status, 201, JSON.stringify(client.body));
  const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.body.client_id}:${client.body.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api:read' }),
  });
  const tokens = (await response.json()) as { access_token: string };
  assert.equal(response.status, 200, JSON.stringify(tokens));
  return { token: tokens.access_token, clientId: client.body.client_id };
}

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  const response = await fetch(`${server.url}/admin/openapi.json`);
  assert.equal(response.status, 200);
  doc = (await response.json()) as OpenApiDocument;
  ({ token: nonAdminToken, clientId: nonAdminClientId } = await issueNonAdminToken());
});
after(() => server.stop());

describe('the OpenAPI document of the admin API', () => {
  test('served without credentials, OpenAPI 3.1, bearer security, server under the issuer', () => {
    assert.match(doc.openapi, /^3\.1\./);
    assert.deepEqual(doc.security, [{ bearer: [] }]);
    assert.deepEqual(doc.components.securitySchemes.bearer, { ...doc.components.securitySchemes.bearer, type: 'http', scheme: 'bearer' });
    assert.equal(doc.servers[0]!.url, `${server.url}/admin`);
    const ids = operations().map((o) => o.operation.operationId);
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });

  test('every route the router serves is documented, and every documented route is served', () => {
    const documented = operations()
      .map((o) => `${o.method} ${o.path.replace(/\{(\w+)\}/g, ':$1')}`)
      .sort();
    assert.deepEqual(servedRoutes(), documented);
  });

  test('a valid request to every documented operation → a documented status and body', async () => {
    const done = new Set<string>();
    const run = async (operationId: string, call: Call = {}) => {
      done.add(operationId);
      const op = operation(operationId);
      // What the server accepts, the document accepts too.
      if (call.body !== undefined) assert.deepEqual(schemaErrors(requestSchema(op), call.body), [], `${operationId}'s request body`);
      return conforms(op, call);
    };
    const expectOk = (answer: Answer) => assert.ok(answer.status < 300, `${answer.status} ${answer.text}`);

    assert.equal((await run('getOpenApiDocument', { token: null })).status, 200);

    const created = await run('createClient', {
      body: {
        client_name: 'OpenAPI test app',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        scope: 'openid api:read',
        token_mode: 'reference',
      },
    });
    assert.equal(created.status, 201);
    assert.equal(typeof created.body.client_secret, 'string');
    const clientId = created.body.client_id as string;
    expectOk(await run('listClients', { query: { limit: '2' } }));
    expectOk(await run('getClient', { id: clientId }));
    expectOk(await run('updateClient', { id: clientId, body: { client_name: 'renamed', token_mode: 'jwt' } }));
    expectOk(await run('rotateClientSecret', { id: clientId }));

    const user = await run('createUser', {
      body: { username: unique('openapi'), password: 'correct horse battery', email: 'openapi@example.com', roles: ['ops'] },
    });
    assert.equal(user.status, 201);
    expectOk(await run('getUser', { id: user.body.id }));
    expectOk(await run('listUsers', { query: { q: 'OPENAPI', limit: '2' } }));
    expectOk(await run('updateUser', { id: user.body.id, body: { name: 'Renamed', roles: [], disabled: true, email: null } }));

    const service = await issueNonAdminToken();
    const tokens = await run('listTokens', { query: { client_id: service.clientId, type: 'access_token', status: 'valid', limit: '5' } });
    expectOk(tokens);
    const entry = tokens.body.items[0];
    assert.ok(entry, 'the client-credentials token is in the ledger');
    expectOk(await run('getToken', { id: entry.id }));
    const revoked = await run('revokeToken', { id: entry.id });
    assert.equal(revoked.body.status, 'revoked');
    expectOk(await run('revokeTokens', { body: { client_id: clientId } }));
    expectOk(await run('pruneLedger', { body: { older_than_seconds: 3600 } }));

    const preview = await run('previewRevocation', { query: { client_id: service.clientId } });
    expectOk(preview);
    assert.equal(preview.body.stateless_not_counted, true);
    expectOk(await run('getStats', { query: { window_seconds: '600' } }));
    const keys = await run('listKeys');
    assert.ok(keys.body.items.some((k: { status: string }) => k.status === 'active'));
    assert.equal((await run('rotateKeys', { body: {} })).status, 201);
    // The stream stays open: its head is checked against the document, then the caller leaves.
    done.add('streamRevocations');
    const stream = operation('streamRevocations');
    const leave = new AbortController();
    const opened = await fetch(`${server.url}/admin${stream.path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: leave.signal });
    const media = (opened.headers.get('content-type') ?? '').split(';')[0]!;
    assert.equal(opened.status, 200);
    assert.ok(resolveRef<ResponseObject>(stream.operation.responses['200']!).content?.[media], `${media} documented`);
    leave.abort();

    assert.equal((await run('unlockUser', { id: user.body.id })).status, 204);
    assert.equal((await run('resetUserFactors', { id: user.body.id })).status, 204);
    assert.equal((await run('deleteUser', { id: user.body.id })).status, 204);
    assert.equal((await run('deleteClient', { id: clientId })).status, 204);
    expectOk(await run('listAuditEvents', { query: { limit: '3' } }));

    // A newly documented operation needs a case above.
    assert.deepEqual(
      [...done].sort(),
      operations()
        .map((o) => o.operation.operationId)
        .sort(),
    );
  });

  test('the documented errors happen as documented: 400, 401, 403, 404, 409, 413, 415', async () => {
    const publicClient = await admin(server, 'POST', '/clients', { client_name: 'public', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' });
    assert.equal(publicClient.status, 201);
    const username = unique('taken');
    assert.equal((await admin(server, 'POST', '/users', { username, password: 'long enough password' })).status, 201);

    let probes = 0;
    for (const op of operations()) {
      const documents = (status: number) => String(status) in op.operation.responses;
      const hasId = op.path.includes('{id}');
      const readsBody = op.method === 'POST' || op.method === 'PATCH';
      const id = hasId ? `unknown-${unique('id')}` : undefined;
      if (op.operation.security?.length === 0) continue;
      for (const status of [401, 403]) assert.ok(documents(status), `${op.operation.operationId} documents ${status}`);
      await conforms(op, { id, token: null }, 401);
      await conforms(op, { id, token: 'not-a-credential' }, 401);
      await conforms(op, { id, token: nonAdminToken }, 403);
      probes += 3;
      if (hasId) {
        assert.ok(documents(404), `${op.operation.operationId} documents 404`);
        await conforms(op, { id, ...(op.method === 'PATCH' ? { body: {} } : {}) }, 404);
        probes++;
      }
      if (readsBody) {
        for (const status of [400, 413, 415]) assert.ok(documents(status), `${op.operation.operationId} reads a body, so documents ${status}`);
        await conforms(op, { id, body: '{"a":', contentType: 'application/json' }, 400);
        await conforms(op, { id, body: 'x=1', contentType: 'text/plain' }, 415);
        await conforms(op, { id, body: JSON.stringify({ pad: 'a'.repeat(101 * 1024) }), contentType: 'application/json' }, 413);
        probes += 3;
      } else if (op.method === 'GET' && op.operation.parameters?.some((p) => '$ref' in p && p.$ref.endsWith('/limit'))) {
        await conforms(op, { query: { limit: '0' } }, 400);
        await conforms(op, { query: { cursor: 'not-a-cursor' } }, 400);
        probes += 2;
      }
    }
    // What the server refuses, the document refuses too.
    for (const [operationId, body] of [
      ['createClient', { client_name: 'x', colour: 'blue' }],
      ['revokeTokens', {}],
      ['updateClient', { client_secret: 'chosen' }],
      ['updateUser', { password_hash: 'x' }],
      ['updateUser', { roles: 'admin' }],
      ['rotateKeys', { kid: 'chosen' }],
    ] as const) {
      assert.notDeepEqual(schemaErrors(requestSchema(operation(operationId)), body), [], `${operationId} documents ${JSON.stringify(body)} as refused`);
      await conforms(operation(operationId), { id: publicClient.body.client_id, body }, 400);
    }
    await conforms(operation('listTokens'), { query: { status: 'shiny' } }, 400);
    for (const window_seconds of ['59', '86401', '1e3', '']) await conforms(operation('getStats'), { query: { window_seconds } }, 400);
    await conforms(operation('previewRevocation'), {}, 400);
    await conforms(operation('previewRevocation'), { query: { subject: 'a', colour: 'blue' } }, 400);
    await conforms(operation('streamRevocations'), { query: { last_event_id: 'x' } }, 400);
    await conforms(operation('createUser'), { body: { username, password: 'another long password' } }, 409);
    await conforms(operation('rotateClientSecret'), { id: publicClient.body.client_id }, 409);
    assert.ok(probes > 40);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the audit trail', () => {
  async function auditPage(query = ''): Promise<{ items: any[]; next_cursor: string | null }> {
    const answer = await admin(server, 'GET', `/audit${query}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body;
  }

  test('create, patch, rotate, failed and refused writes, delete → listed newest first with actor, action, target and status, and no secret', async () => {
    const secrets: string[] = [ADMIN_KEY, nonAdminToken];
    const password = `pw-${unique('secret')}-do-not-log`;
    const created = await admin(server, 'POST', '/clients', { client_name: 'audited', redirect_uris: [REDIRECT_URI], scope: 'openid' });
    assert.equal(created.status, 201);
    const clientId = created.body.client_id as string;
    secrets.push(created.body.client_secret);
    assert.equal((await admin(server, 'PATCH', `/clients/${clientId}`, { client_name: 'audited and renamed' })).status, 200);
    const rotated = await admin(server, 'POST', `/clients/${clientId}/secret`);
    assert.equal(rotated.status, 200);
    secrets.push(rotated.body.client_secret);
    const user = await admin(server, 'POST', '/users', { username: unique('audited'), password });
    assert.equal(user.status, 201);
    secrets.push(password);
    const refused = await admin(server, 'PATCH', `/clients/${clientId}`, { client_name: 'x', client_secret: password });
    assert.equal(refused.status, 400);
    assert.equal((await admin(server, 'GET', `/clients/${clientId}`)).status, 200, 'reads are not audited');
    assert.equal((await admin(server, 'DELETE', `/clients/${clientId}`)).status, 204);
    assert.equal((await admin(server, 'DELETE', `/users/${user.body.id}`, undefined, 'wrong-key')).status, 401);
    assert.equal((await admin(server, 'POST', '/revocations', { subject: user.body.id }, nonAdminToken)).status, 403);
    assert.equal((await admin(server, 'POST', '/nowhere', { password })).status, 404);

    const key = { kind: 'api_key', id: 'api-key' };
    const expected = [
      { actor: key, method: 'POST', route: '/clients', action: 'createClient', target_id: null, status: 201 },
      { actor: key, method: 'PATCH', route: '/clients/:id', action: 'updateClient', target_id: clientId, status: 200 },
      { actor: key, method: 'POST', route: '/clients/:id/secret', action: 'rotateClientSecret', target_id: clientId, status: 200 },
      { actor: key, method: 'POST', route: '/users', action: 'createUser', target_id: null, status: 201 },
      { actor: key, method: 'PATCH', route: '/clients/:id', action: 'updateClient', target_id: clientId, status: 400 },
      { actor: key, method: 'DELETE', route: '/clients/:id', action: 'deleteClient', target_id: clientId, status: 204 },
      { actor: { kind: 'token', id: nonAdminClientId }, method: 'POST', route: '/revocations', action: 'revokeTokens', target_id: null, status: 403 },
      { actor: key, method: 'POST', route: null, action: null, target_id: null, status: 404 },
    ].reverse();

    // The refused unauthenticated DELETE is counted in this minute's row for its IP (actor null): an
    // earlier refusal may have opened that row (it keeps that one's time and route), or this one did,
    // and then the row sits among these. The authenticated rows are compared without it.
    const authenticated = (items: any[]) => items.filter((item) => item.actor !== null).slice(0, expected.length);
    const auditedPage = async () => authenticated((await auditPage(`?limit=${expected.length + 1}`)).items);
    // Events are recorded once each answer is sent: give the last one a moment to land.
    const pick = (items: any[]) => items.map(({ actor, method, route, action, target_id, status }) => ({ actor, method, route, action, target_id, status }));
    let items = await auditedPage();
    for (let i = 0; i < 50 && JSON.stringify(pick(items)) !== JSON.stringify(expected); i++) {
      await sleep(100);
      items = await auditedPage();
    }
    assert.deepEqual(pick(items), expected);
    // Created ids and the source IP.
    const [, , , , userRow, , , clientRow] = items;
    assert.deepEqual([clientRow.created_id, userRow.created_id, items[0].created_id], [clientId, user.body.id, null]);
    assert.ok(items.every((item: any) => item.source_ip === '127.0.0.1' && item.count === 1));
    for (const item of items) {
      assert.match(item.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(!Number.isNaN(Date.parse(item.created_at)));
    }
    const times = items.map((i) => Date.parse(i.created_at));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
      'newest first',
    );

    // The whole trail, page by page: ordered, no duplicates, and not one secret in it.
    const all: any[] = [];
    let cursor: string | null = '';
    for (let pages = 0; cursor !== null; pages++) {
      assert.ok(pages < 200);
      const next = await auditPage(`?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      all.push(...next.items);
      cursor = next.next_cursor;
    }
    assert.ok(all.some((i) => i.actor === null && i.status === 401 && i.source_ip === '127.0.0.1' && i.count >= 1));
    assert.deepEqual(authenticated(all), items);
    assert.equal(new Set(all.map((i) => i.id)).size, all.length);
    assert.ok(
      all.every((i) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(i.method)),
      'only writes are recorded',
    );
    const text = JSON.stringify(all);
    for (const secret of secrets) assert.ok(secret && !text.includes(secret), 'no secret, password, key or token in the audit trail');
    assert.ok(!text.includes('do-not-log'));
  });

  test('the audit list is admin-only and paginates like the others', async () => {
    assert.equal((await admin(server, 'GET', '/audit', undefined, 'wrong-key')).status, 401);
    assert.equal((await admin(server, 'GET', '/audit?limit=201')).status, 400);
    const first = await auditPage('?limit=1');
    assert.equal(first.items.length, 1);
    assert.equal(typeof first.next_cursor, 'string');
  });
});

test('a failure to record an audit event is logged and the request still succeeds', async () => {
  const logged: unknown[] = [];
  const failing = { record: () => Promise.reject(new Error('database is gone')), list: () => Promise.resolve([]) };
  const app = express();
  app.use(recordAdminWrites(failing as never, { error: (...args: unknown[]) => logged.push(args) } as never));
  app.post('/clients', (_req, res) => void res.status(201).json({ ok: true }));
  const port = await freePort();
  const listener = app.listen(port, '127.0.0.1');
  try {
    const response = await fetch(`http://127.0.0.1:${port}/clients`, { method: 'POST' });
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), { ok: true });
    for (let i = 0; i < 50 && logged.length === 0; i++) await sleep(10);
    assert.equal(logged.length, 1);
    assert.match(JSON.stringify(logged[0]), /audit event not recorded/);
  } finally {
    listener.close();
  }
});
