import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { ADMIN_KEY } from './helpers/admin.ts';
import { countRows, databaseContents, insertRows } from './helpers/db.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { runCli, startServer, type TestServer } from './helpers/server.ts';

type Mode = 'reference' | 'jwt' | 'stateless';
const MODES: Mode[] = ['reference', 'jwt', 'stateless'];
const REFERENCE = /^[A-Za-z0-9_-]{43}$/;
const LEDGER_FIELDS = [
  'id',
  'type',
  'format',
  'status',
  'subject',
  'client_id',
  'grant_id',
  'scope',
  'audience',
  'created_at',
  'expires_at',
  'redeemed_at',
].sort();

let server: TestServer;
let counter = 0;

before(async () => {
  // debug logging, so that the "nothing secret in the logs" check means something
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: 'debug' } });
});
after(() => server.stop());

/** Every credential this file creates or sends: none may show up anywhere after its creation. */
const secrets = new Set<string>([ADMIN_KEY]);
/** Every admin API exchange, to check afterwards that no secret came back except at creation. */
const exchanges: { method: string; path: string; status: number; text: string }[] = [];

interface Answer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

interface CallOptions {
  /** JSON-encoded unless `raw` is given */
  body?: unknown;
  raw?: string;
  /** null: no content-type header at all; default application/json when there is a body */
  contentType?: string | null;
  /** null: no Authorization header; default the bootstrap key */
  token?: string | null;
  authorization?: string;
  /**
   * Send the body in 8 KiB chunks (Transfer-Encoding: chunked, no Content-Length) on a connection of
   * its own, closed afterwards, so that whatever state the server leaves it in cannot touch other tests.
   */
  chunked?: boolean;
}

/** One request on a fresh connection, the body streamed in chunks. */
function chunkedRequest(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string; headers: Headers }> {
  return new Promise((done, fail) => {
    const req = httpRequest(url, { method, headers: { ...headers, connection: 'close' }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        req.destroy();
        done({ status: res.statusCode!, text, headers: h });
      });
    });
    req.on('error', fail);
    let offset = 0;
    const pump = () => {
      while (offset < body.length) {
        const piece = body.slice(offset, offset + 8192);
        offset += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

async function api(method: string, path: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.token !== null) headers.authorization = `Bearer ${options.token ?? ADMIN_KEY}`;
  const body = options.raw !== undefined ? options.raw : options.body !== undefined ? JSON.stringify(options.body) : undefined;
  const contentType = options.contentType === undefined ? (body !== undefined ? 'application/json' : null) : options.contentType;
  if (contentType) headers['content-type'] = contentType;
  let status: number;
  let text: string;
  let responseHeaders: Headers;
  if (options.chunked) {
    ({ status, text, headers: responseHeaders } = await chunkedRequest(method, `${server.url}/admin${path}`, headers, String(body ?? '')));
  } else {
    const response = await fetch(`${server.url}/admin${path}`, { method, headers, body });
    status = response.status;
    text = await response.text();
    responseHeaders = response.headers;
  }
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  exchanges.push({ method, path, status, text });
  return { status, body: parsed, text, headers: responseHeaders };
}

/** An RFC 9457 problem with the stable `code`; when `field` is given, the answer names it. */
function assertProblem(answer: Answer, status: number | number[], expected: { code?: string; field?: string } = {}) {
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(answer.status), `status ${answer.status}, expected ${statuses.join(' or ')}: ${answer.text.slice(0, 500)}`);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json\b/, 'problem+json content type');
  const problem = answer.body;
  assert.equal(typeof problem, 'object', answer.text.slice(0, 300));
  assert.ok(typeof problem.type === 'string' && problem.type.length > 0, 'type');
  assert.ok(typeof problem.title === 'string' && problem.title.length > 0, 'title');
  assert.equal(problem.status, answer.status, 'status member equals the HTTP status');
  assert.ok(typeof problem.detail === 'string' && problem.detail.length > 0, 'detail');
  assert.ok(typeof problem.code === 'string' && problem.code.length > 0, 'code');
  if (expected.code) assert.equal(problem.code, expected.code, answer.text);
  if (expected.field) {
    const field = expected.field;
    const named = problem.field === field || String(problem.field ?? '').startsWith(`${field}.`) || problem.detail.includes(field);
    assert.ok(named, `the problem names ${field}: ${answer.text}`);
  }
}

function assertList(body: any) {
  assert.equal(typeof body, 'object');
  assert.deepEqual(Object.keys(body).sort(), ['items', 'next_cursor'], 'a list is exactly { items, next_cursor }');
  assert.ok(Array.isArray(body.items));
  assert.ok(body.next_cursor === null || (typeof body.next_cursor === 'string' && body.next_cursor.length > 0), `next_cursor: ${body.next_cursor}`);
}

/** Follows next_cursor to the end; `between` runs after every page. */
async function walk(path: string, limit: number, between?: () => Promise<unknown>): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 5000, 'the walk ends');
    const sep = path.includes('?') ? '&' : '?';
    const answer = await api('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(answer.status, 200, answer.text);
    assertList(answer.body);
    assert.ok(answer.body.items.length <= limit, `at most ${limit} items per page`);
    if (cursor) assert.ok(answer.body.items.length > 0, 'a page reached through a cursor is not empty');
    items.push(...answer.body.items);
    cursor = answer.body.next_cursor;
    if (!cursor) return items;
    await between?.();
  }
}

const webMetadata = (extra: Record<string, unknown> = {}) => ({
  client_name: `admin-api app ${++counter}`,
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  response_types: ['code'],
  scope: 'openid profile email offline_access api:read',
  ...extra,
});

/** A client registered through the API (201), its secret remembered as a secret. */
async function newClient(extra: Record<string, unknown> = {}): Promise<RegisteredClient> {
  const answer = await api('POST', '/clients', { body: webMetadata(extra) });
  assert.equal(answer.status, 201, answer.text);
  if (answer.body.client_secret) secrets.add(answer.body.client_secret);
  return answer.body;
}

/** A client-credentials-only client (a service or resource server). */
const serviceClient = (mode: Mode, scope = 'api:read') =>
  newClient({ grant_types: ['client_credentials'], response_types: [], redirect_uris: undefined, scope, token_mode: mode });

/** A resource server that may introspect tokens of the default audience (the issuer), whoever they were issued to. */
const introspector = () =>
  newClient({ grant_types: ['client_credentials'], response_types: [], redirect_uris: undefined, scope: 'api:read', introspection_audiences: [server.url] });

async function newUser(extra: Record<string, unknown> = {}) {
  const username = `admin-api-user${process.pid}x${++counter}`;
  const password = `pw-${randomBytes(12).toString('base64url')}`;
  secrets.add(password);
  const answer = await api('POST', '/users', { body: { username, password, email: `${username}@example.com`, name: 'Admin API User', ...extra } });
  assert.equal(answer.status, 201, answer.text);
  return { id: answer.body.id as string, username, password, answer };
}

/** Reference token values are secrets too; so are the jti of JWTs (the ledger must not show them). */
function rememberTokens(tokens: { access_token: string; refresh_token?: string | undefined }) {
  for (const token of [tokens.access_token, tokens.refresh_token]) {
    if (!token) continue;
    secrets.add(token);
    if (token.split('.').length === 3) secrets.add(decodeJwt(token).jti!);
  }
}

async function clientCredentials(config: oidc.Configuration, scope = 'api:read', resource?: string) {
  const tokens = await oidc.clientCredentialsGrant(config, { scope, ...(resource ? { resource } : {}) });
  rememberTokens(tokens);
  return tokens;
}

const isActive = async (config: oidc.Configuration, token: string) => (await oidc.tokenIntrospection(config, token)).active === true;

const users = async () => (await countRows(server)).users!;

/**
 * Row counts of every table but the audit trail, which records every admin write, refused ones
 * included (after the answer is sent), by design, and the second passes of bulk revocations, which
 * the server runs (and removes) in the background a second after an earlier test's revocation.
 */
async function rows(): Promise<Record<string, number>> {
  const { audit_events: _audit, revocation_passes: _passes, ...rest } = await countRows(server);
  return rest;
}

/** The OAuth error of an openid-client rejection (a 401 comes as a WWW-Authenticate challenge). */
function oauthError(error: any): { error: string | undefined; status: number | undefined } {
  const challenge = Array.isArray(error?.cause) ? error.cause.find((c: any) => c?.parameters?.error) : undefined;
  return { error: error?.error ?? challenge?.parameters?.error ?? error?.cause?.error, status: error?.status ?? error?.response?.status };
}

// ---------------------------------------------------------------------------------------------------

describe('authentication', () => {
  test('no Authorization header → 401 problem+json with type, title, status, detail, code', async () => {
    const answer = await api('GET', '/clients', { token: null });
    assertProblem(answer, 401);
    assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer\b/i);
  });

  test('wrong key → 401 (a wrong key, the key with one character changed, a prefix of it, an empty bearer, Basic)', async () => {
    const flipped = ADMIN_KEY.slice(0, -1) + (ADMIN_KEY.endsWith('p') ? 'q' : 'p');
    for (const authorization of [
      `Bearer not-the-key-${'x'.repeat(40)}`,
      `Bearer ${flipped}`,
      `Bearer ${ADMIN_KEY.slice(0, 32)}`,
      `Bearer ${ADMIN_KEY}x`,
      'Bearer ',
      `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}`,
      ADMIN_KEY,
    ]) {
      const answer = await api('GET', '/clients', { authorization });
      assertProblem(answer, 401);
    }
  });

  test('a write without credentials → 401 and nothing written', async () => {
    const before = await rows();
    assertProblem(await api('POST', '/users', { token: null, body: { username: `nobody${process.pid}`, password: 'long enough password' } }), 401);
    assertProblem(await api('POST', '/clients', { token: 'wrong', body: webMetadata() }), 401);
    assertProblem(await api('POST', '/revocations', { token: null, body: { subject: 'someone' } }), 401);
    assertProblem(await api('POST', '/prune', { token: null, body: {} }), 401);
    assert.deepEqual(await rows(), before);
  });

  test('the bootstrap key works, and the key is matched case-sensitively', async () => {
    const answer = await api('GET', '/clients');
    assert.equal(answer.status, 200);
    assertList(answer.body);
    if (ADMIN_KEY.toUpperCase() !== ADMIN_KEY) assertProblem(await api('GET', '/clients', { token: ADMIN_KEY.toUpperCase() }), 401);
  });

  test('unknown admin route → 404 problem', async () => {
    assertProblem(await api('GET', '/nothing-here'), 404);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('clients', () => {
  test('POST /admin/clients → 201 with client_id, the metadata and client_secret (this once)', async () => {
    const metadata = webMetadata({ token_mode: 'jwt', post_logout_redirect_uris: ['http://127.0.0.1:9/logged-out'] });
    const answer = await api('POST', '/clients', { body: metadata });
    assert.equal(answer.status, 201, answer.text);
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    const client = answer.body;
    secrets.add(client.client_secret);
    assert.ok(typeof client.client_id === 'string' && client.client_id.length > 0);
    assert.ok(typeof client.client_secret === 'string' && client.client_secret.length >= 32, 'a strong client_secret');
    for (const key of ['client_name', 'redirect_uris', 'grant_types', 'response_types', 'scope', 'token_mode', 'post_logout_redirect_uris'] as const) {
      assert.deepEqual(client[key], metadata[key as keyof typeof metadata], key);
    }
  });

  test('a public client (token_endpoint_auth_method none) gets no secret', async () => {
    const client = await newClient({ token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    assert.equal(client.client_secret, undefined);
    assert.equal(client.token_endpoint_auth_method, 'none');
    // ...and so it has no secret to rotate
    const rotate = await api('POST', `/clients/${client.client_id}/secret`);
    assert.ok(rotate.status >= 400 && rotate.status < 500, rotate.text);
    assertProblem(rotate, rotate.status);
  });

  test('a chosen client_id is kept; taking it twice → 4xx naming client_id, nothing written', async () => {
    const id = `chosen-${process.pid}-${++counter}`;
    const client = await newClient({ client_id: id });
    assert.equal(client.client_id, id);
    const before = await rows();
    const again = await api('POST', '/clients', { body: webMetadata({ client_id: id }) });
    assertProblem(again, [400, 409], { field: 'client_id' });
    assert.deepEqual(await rows(), before);
  });

  test('GET /admin/clients/{id} → 200 without secret; unknown → 404', async () => {
    const created = await newClient({ token_mode: 'stateless' });
    const answer = await api('GET', `/clients/${created.client_id}`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.client_id, created.client_id);
    assert.equal(answer.body.token_mode, 'stateless');
    assert.deepEqual(answer.body.redirect_uris, [REDIRECT_URI]);
    assert.ok(!('client_secret' in answer.body), `no secret member: ${answer.text}`);
    assert.ok(!answer.text.includes(created.client_secret!), 'the secret is not shown again');
    assert.ok(!/\$argon2|hmac-sha256\$/.test(answer.text), 'nor its hash');
    assertProblem(await api('GET', `/clients/no-such-client-${randomUUID()}`), 404, { code: 'not_found' });
  });

  test('GET /admin/clients → { items, next_cursor } without secrets', async () => {
    const created = await newClient();
    const all = await walk('/clients', 200);
    assert.ok(
      all.some((c) => c.client_id === created.client_id),
      'the new client is listed',
    );
    for (const client of all) {
      assert.equal(client.client_secret, undefined, 'no client_secret in a list');
      assert.ok(!/\$argon2|hmac-sha256\$/.test(JSON.stringify(client)), 'no secret hash in a list');
    }
    const first = await api('GET', '/clients');
    assertList(first.body);
    assert.ok(first.body.items.length <= 50, 'default limit 50');
  });

  test('clients list: limit=2 pages cover every client exactly once, also while clients are being created', async () => {
    while ((await walk('/clients', 200)).length < 7) await newClient();
    const everything = (await walk('/clients', 200)).map((c) => c.client_id);
    assert.equal(new Set(everything).size, everything.length, 'no duplicates at limit 200');
    const paged = (await walk('/clients', 2)).map((c) => c.client_id);
    assert.deepEqual(paged, everything, 'limit=2 walks the same clients in the same order');

    const snapshot = new Set(everything);
    let stop = false;
    const createdMeanwhile: string[] = [];
    // Paced below the walk's speed (two a page): a creator as fast as the server would outrun it for ever.
    const creator = (async () => {
      while (!stop) {
        createdMeanwhile.push((await newClient()).client_id);
        await sleep(60);
      }
    })();
    let during: string[];
    try {
      during = (await walk('/clients', 2, () => sleep(15))).map((c) => c.client_id);
    } finally {
      stop = true;
      await creator;
    }
    assert.ok(createdMeanwhile.length > 0, 'clients were created during the walk');
    assert.equal(new Set(during).size, during.length, `no duplicates under inserts: ${during.length} items`);
    for (const id of snapshot) assert.ok(during.includes(id), `${id} (there before the walk) is not missing`);
    const known = new Set([...snapshot, ...createdMeanwhile]);
    for (const id of during) assert.ok(known.has(id), `${id} is a real client`);
  });

  test('limit=0, limit=201, limit=-1, limit=abc, limit=1.5 → 400 naming limit; a forged cursor → 400 naming cursor', async () => {
    for (const limit of ['0', '201', '-1', 'abc', '1.5']) {
      assertProblem(await api('GET', `/clients?limit=${limit}`), 400, { field: 'limit' });
      assertProblem(await api('GET', `/tokens?limit=${limit}`), 400, { field: 'limit' });
    }
    assert.equal((await api('GET', '/clients?limit=200')).status, 200);
    assert.equal((await api('GET', '/clients?limit=1')).status, 200);
    // Numbers no date can hold, as well as shapes that are not cursors.
    const forged = ['not-a-cursor', '{"a":1}', '[1,2]', '[1e300,"x"]', '[-1e20,"x"]', '[8640000000000001,"x"]'].map((text, i) =>
      i ? Buffer.from(text).toString('base64url') : text,
    );
    for (const cursor of forged) {
      for (const path of ['/clients', '/tokens', '/audit']) assertProblem(await api('GET', `${path}?cursor=${cursor}`), 400, { field: 'cursor' });
    }
  });

  test('PATCH /admin/clients/{id} → 200 the client; GET shows the change; null removes a field; unknown → 404', async () => {
    const created = await newClient({ client_uri: 'https://app.example.com/' });
    const patched = await api('PATCH', `/clients/${created.client_id}`, { body: { client_name: 'Renamed', token_mode: 'jwt', client_uri: null } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.client_name, 'Renamed');
    assert.equal(patched.body.token_mode, 'jwt');
    assert.equal(patched.body.client_uri, undefined);
    assert.equal(patched.body.client_secret, undefined, 'a PATCH that keeps the secret does not show it');
    assert.deepEqual(patched.body.redirect_uris, [REDIRECT_URI], 'untouched fields stay');
    const read = await api('GET', `/clients/${created.client_id}`);
    assert.equal(read.body.client_name, 'Renamed');
    assert.equal(read.body.token_mode, 'jwt');
    assert.equal(read.body.client_uri, undefined);
    // the secret still works after a PATCH
    await clientCredentials(await discover(server, created));
    assertProblem(await api('PATCH', `/clients/no-such-client-${randomUUID()}`, { body: { client_name: 'x' } }), 404);
  });

  test('DELETE /admin/clients/{id} → 204; then 404; its tokens become inactive', async () => {
    const doomed = await newClient();
    const user = await newUser();
    const config = await discover(server, doomed);
    const tokens = await codeFlow(config, user);
    rememberTokens(tokens);
    const service = await clientCredentials(config);
    const resourceServer = await discover(server, await introspector());
    assert.equal(await isActive(resourceServer, tokens.access_token), true);

    const answer = await api('DELETE', `/clients/${doomed.client_id}`);
    assert.equal(answer.status, 204, answer.text);
    assert.equal(answer.text, '');
    assertProblem(await api('GET', `/clients/${doomed.client_id}`), 404);
    assertProblem(await api('DELETE', `/clients/${doomed.client_id}`), 404);
    assertProblem(await api('DELETE', `/clients/no-such-client-${randomUUID()}`), 404);
    for (const token of [tokens.access_token, tokens.refresh_token!, service.access_token]) assert.equal(await isActive(resourceServer, token), false);
    const entries = await walk(`/tokens?client_id=${doomed.client_id}`, 200);
    assert.ok(entries.length >= 3);
    for (const entry of entries) assert.ok(!['valid'].includes(entry.status), `${entry.type} is no longer valid (${entry.status})`);
    // and the client can no longer get tokens
    await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'api:read' }), (e: any) => oauthError(e).error === 'invalid_client');
  });

  test('POST /admin/clients/{id}/secret → 200 { client_secret }; unknown → 404', async () => {
    const client = await newClient();
    const answer = await api('POST', `/clients/${client.client_id}/secret`);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(Object.keys(answer.body), ['client_secret']);
    assert.ok(typeof answer.body.client_secret === 'string' && answer.body.client_secret.length >= 32);
    assert.notEqual(answer.body.client_secret, client.client_secret);
    secrets.add(answer.body.client_secret);
    assertProblem(await api('POST', `/clients/no-such-client-${randomUUID()}/secret`), 404);
  });

  test('PATCH token_endpoint_auth_method none → client_secret_basic returns a new secret once; back to none drops it', async () => {
    const client = await newClient();
    const toPublic = await api('PATCH', `/clients/${client.client_id}`, { body: { token_endpoint_auth_method: 'none' } });
    assert.equal(toPublic.status, 200, toPublic.text);
    assert.equal(toPublic.body.client_secret, undefined);
    const back = await api('PATCH', `/clients/${client.client_id}`, { body: { token_endpoint_auth_method: 'client_secret_basic' } });
    assert.equal(back.status, 200, back.text);
    assert.ok(typeof back.body.client_secret === 'string' && back.body.client_secret.length >= 32, 'a client that needs a secret again gets a new one');
    secrets.add(back.body.client_secret);
    assert.notEqual(back.body.client_secret, client.client_secret);
    await assert.rejects(
      oidc.clientCredentialsGrant(await discover(server, client), { scope: 'api:read' }),
      (e: any) => oauthError(e).error === 'invalid_client',
      'the secret from before is gone',
    );
    await clientCredentials(await discover(server, { ...client, client_secret: back.body.client_secret }));
    assert.equal((await api('GET', `/clients/${client.client_id}`)).body.client_secret, undefined);
  });

  test('a native client can PATCH its custom-scheme redirect URIs without restating application_type', async () => {
    const native = await newClient({
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['com.example.app:/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    assert.equal(native.application_type, 'native');
    // the same URI form the API accepted at creation must be accepted in an update of that client
    const answer = await api('PATCH', `/clients/${native.client_id}`, { body: { redirect_uris: ['com.example.app:/cb', 'com.example.app:/other'] } });
    assert.equal(answer.status, 200, `PATCH of a native client's redirect_uris: ${answer.text}`);
    assert.deepEqual(answer.body.redirect_uris, ['com.example.app:/cb', 'com.example.app:/other']);
    // and a client that is not native still may not have one
    const web = await newClient();
    assertProblem(await api('PATCH', `/clients/${web.client_id}`, { body: { redirect_uris: ['com.example.app:/cb'] } }), 400, { field: 'redirect_uris' });
  });

  test('deleting a client and registering its client_id again does not bring its old tokens back', async () => {
    const id = `reborn-${process.pid}-${++counter}`;
    const first = await newClient({ client_id: id, token_mode: 'stateless' });
    const firstConfig = await discover(server, first);
    const old = await clientCredentials(firstConfig);
    const resourceServer = await discover(server, await introspector());
    assert.equal(await isActive(resourceServer, old.access_token), true);
    assert.equal((await api('DELETE', `/clients/${id}`)).status, 204);
    await sleep(1100); // revocations count to the second
    const second = await newClient({ client_id: id, token_mode: 'stateless' });
    assert.notEqual(second.client_secret, first.client_secret);
    await assert.rejects(
      oidc.clientCredentialsGrant(firstConfig, { scope: 'api:read' }),
      (e: any) => oauthError(e).error === 'invalid_client',
      'the old secret does not work for the new client',
    );
    const fresh = await clientCredentials(await discover(server, second));
    assert.equal(await isActive(resourceServer, fresh.access_token), true);
    assert.equal(await isActive(resourceServer, old.access_token), false, 'the old token stays inactive');
  });

  test('token_endpoint_auth_method client_secret_jwt → a clear 400 naming the field and the method; nothing written', async () => {
    const before = await rows();
    const answer = await api('POST', '/clients', { body: webMetadata({ token_endpoint_auth_method: 'client_secret_jwt' }) });
    assertProblem(answer, 400, { field: 'token_endpoint_auth_method' });
    assert.match(answer.body.detail, /client_secret_jwt/, 'the detail says which method is refused');
    assert.match(answer.body.detail, /not supported|unsupported|cannot|not allowed/i, `the detail says why: ${answer.body.detail}`);
    const existing = await newClient();
    const snapshot = await rows();
    const patch = await api('PATCH', `/clients/${existing.client_id}`, { body: { token_endpoint_auth_method: 'client_secret_jwt' } });
    assertProblem(patch, 400, { field: 'token_endpoint_auth_method' });
    assert.deepEqual(await rows(), snapshot);
    assert.equal((await api('GET', `/clients/${existing.client_id}`)).body.token_endpoint_auth_method, existing.token_endpoint_auth_method);
    assert.equal(before.clients! + 1, snapshot.clients);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('users', () => {
  test('POST /admin/users → 201 { id, username, email, name } and never the password', async () => {
    const { id, username, password, answer } = await newUser();
    assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(typeof id === 'string' && id.length > 0);
    assert.equal(answer.body.username, username);
    assert.equal(answer.body.email, `${username}@example.com`);
    assert.equal(answer.body.name, 'Admin API User');
    assert.ok(!answer.text.includes(password), 'no password');
    assert.ok(!/password|hash/i.test(Object.keys(answer.body).join(' ')), `no password member: ${answer.text}`);
    assert.ok(!/\$argon2|hmac-sha256\$/.test(answer.text));
  });

  test('only username and password are required', async () => {
    const username = `minimal${process.pid}x${++counter}`;
    const password = 'exactly8';
    secrets.add(password);
    const answer = await api('POST', '/users', { body: { username, password } });
    assert.equal(answer.status, 201, answer.text);
    assert.equal(answer.body.username, username);
  });

  test('duplicate username → 409 naming username; nothing written', async () => {
    const { username } = await newUser();
    const before = await rows();
    const password = `another-${randomBytes(8).toString('hex')}`;
    secrets.add(password);
    const answer = await api('POST', '/users', { body: { username, password } });
    assertProblem(answer, 409, { field: 'username' });
    assert.deepEqual(await rows(), before);
  });

  test('password shorter than 8 → 400 naming password; nothing written', async () => {
    const before = await users();
    for (const password of ['', 'a', '1234567']) {
      const answer = await api('POST', '/users', { body: { username: `shortpw${process.pid}x${++counter}`, password } });
      assertProblem(answer, 400, { field: 'password' });
      if (password.length >= 3) assert.ok(!answer.text.includes(password), 'the problem does not echo the password');
    }
    assert.equal(await users(), before);
  });

  test('GET /admin/users/{id} → 200 without password; unknown → 404', async () => {
    const user = await newUser();
    const answer = await api('GET', `/users/${user.id}`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.id, user.id);
    assert.equal(answer.body.username, user.username);
    assert.ok(!answer.text.includes(user.password));
    assert.ok(!/\$argon2|hmac-sha256\$/.test(answer.text));
    assertProblem(await api('GET', `/users/${randomUUID()}`), 404, { code: 'not_found' });
  });

  test('DELETE /admin/users/{id} → 204; then 404; the user can no longer sign in and their tokens are inactive', async () => {
    const client = await newClient();
    const config = await discover(server, client);
    const user = await newUser();
    const tokens = await codeFlow(config, user);
    rememberTokens(tokens);
    assert.equal((await oidc.fetchUserInfo(config, tokens.access_token, user.id)).sub, user.id, 'the id is the sub');
    assert.equal(tokens.claims()!.sub, user.id);

    const answer = await api('DELETE', `/users/${user.id}`);
    assert.equal(answer.status, 204, answer.text);
    assertProblem(await api('GET', `/users/${user.id}`), 404);
    assertProblem(await api('DELETE', `/users/${user.id}`), 404);
    assertProblem(await api('DELETE', `/users/${randomUUID()}`), 404);
    assert.equal(await isActive(config, tokens.access_token), false);
    assert.equal(await isActive(config, tokens.refresh_token!), false);
    await assert.rejects(codeFlow(config, user), 'a deleted user cannot sign in');
  });
});

// ---------------------------------------------------------------------------------------------------

describe('the token ledger', () => {
  let client: RegisteredClient;
  let config: oidc.Configuration;
  let user: Awaited<ReturnType<typeof newUser>>;
  let revokedGrantFlow: oidc.TokenEndpointResponse;
  let revokedGrantId: string;
  let keptFlow: oidc.TokenEndpointResponse;

  before(async () => {
    client = await newClient({ token_mode: 'reference' });
    config = await discover(server, client);
    user = await newUser();
    keptFlow = await codeFlow(config, user);
    rememberTokens(keptFlow);
    rememberTokens(await oidc.refreshTokenGrant(config, keptFlow.refresh_token!).then((t) => ((keptFlow = t), t)));
    const grantsBefore = new Set((await walk(`/tokens?subject=${user.id}`, 200)).map((e) => e.grant_id));
    revokedGrantFlow = await codeFlow(config, user);
    rememberTokens(revokedGrantFlow);
    const newGrants = new Set((await walk(`/tokens?subject=${user.id}`, 200)).map((e) => e.grant_id).filter((g) => g && !grantsBefore.has(g)));
    assert.equal(newGrants.size, 1, 'the second flow made one grant');
    revokedGrantId = [...newGrants][0]!;
    for (let i = 0; i < 4; i++) await clientCredentials(config);
  });

  test('GET /admin/tokens → { items, next_cursor } of ledger entries, never a token value', async () => {
    const answer = await api('GET', '/tokens');
    assert.equal(answer.status, 200, answer.text);
    assertList(answer.body);
    assert.ok(answer.body.items.length > 0);
    for (const entry of answer.body.items) {
      assert.deepEqual(Object.keys(entry).sort(), LEDGER_FIELDS, `ledger entry fields: ${JSON.stringify(entry)}`);
      assert.ok(['access_token', 'refresh_token', 'authorization_code', 'device_code'].includes(entry.type));
      assert.ok(['reference', 'jwt'].includes(entry.format));
      assert.ok(['valid', 'redeemed', 'revoked', 'inactive'].includes(entry.status));
    }
    const mine = await walk(`/tokens?client_id=${client.client_id}`, 200);
    const text = JSON.stringify(mine);
    for (const token of [keptFlow.access_token, keptFlow.refresh_token!, revokedGrantFlow.access_token, revokedGrantFlow.refresh_token!]) {
      assert.ok(!text.includes(token), 'no token value in the ledger listing');
      assert.ok(!mine.some((e) => e.id === token), 'an entry id is not the token');
    }
  });

  test('filter subject', async () => {
    const items = await walk(`/tokens?subject=${encodeURIComponent(user.id)}`, 200);
    assert.ok(items.length >= 5, `the user's tokens: ${items.length}`);
    for (const entry of items) assert.equal(entry.subject, user.id);
    assert.deepEqual(await walk(`/tokens?subject=nobody-${randomUUID()}`, 200), []);
  });

  test('filter client_id (client-credentials entries have subject = client_id)', async () => {
    const items = await walk(`/tokens?client_id=${encodeURIComponent(client.client_id)}`, 200);
    assert.ok(items.length >= 9, `the client's tokens: ${items.length}`);
    for (const entry of items) assert.equal(entry.client_id, client.client_id);
    const service = items.filter((e) => e.type === 'access_token' && e.grant_id === null);
    assert.ok(service.length >= 4, 'client credentials entries');
    for (const entry of service) assert.equal(entry.subject, client.client_id);
  });

  test('filter type, each of the four', async () => {
    const counts: Record<string, number> = {};
    for (const type of ['access_token', 'refresh_token', 'authorization_code', 'device_code']) {
      const items = await walk(`/tokens?client_id=${client.client_id}&type=${type}`, 200);
      for (const entry of items) {
        assert.equal(entry.type, type);
        assert.equal(entry.client_id, client.client_id);
      }
      counts[type] = items.length;
    }
    assert.ok(counts.access_token! >= 7 && counts.refresh_token! >= 3 && counts.authorization_code! >= 2, JSON.stringify(counts));
    assert.equal(counts.device_code, 0);
  });

  test('filter status, each of the four (valid, redeemed, revoked, inactive)', async () => {
    // revoked: one entry through the admin API; inactive: the second flow's grant through a bulk revocation
    const accessEntries = await walk(`/tokens?client_id=${client.client_id}&type=access_token&status=valid`, 200);
    const victim = accessEntries.find((e) => e.grant_id === null)!;
    assert.equal((await api('POST', `/tokens/${victim.id}/revoke`)).status, 200);
    const live = (await walk(`/tokens?subject=${user.id}`, 200)).filter((e) => e.grant_id === revokedGrantId && ['valid', 'redeemed'].includes(e.status));
    const bulk = await api('POST', '/revocations', { body: { grant_id: revokedGrantId } });
    assert.equal(bulk.status, 200, bulk.text);
    assert.deepEqual(bulk.body, { revoked: live.length }, "the grant's live entries (access, refresh, code) are counted");

    for (const status of ['valid', 'redeemed', 'revoked', 'inactive']) {
      const items = await walk(`/tokens?client_id=${client.client_id}&status=${status}`, 200);
      assert.ok(items.length > 0, `some ${status} entries`);
      for (const entry of items) assert.equal(entry.status, status);
    }
    const redeemed = await walk(`/tokens?client_id=${client.client_id}&status=redeemed`, 200);
    assert.ok(
      redeemed.some((e) => e.type === 'authorization_code' && e.redeemed_at),
      'a redeemed code has redeemed_at',
    );
    assert.ok(
      redeemed.some((e) => e.type === 'refresh_token'),
      'a rotated refresh token is redeemed',
    );
    // every filter at once
    const combined = await walk(`/tokens?subject=${user.id}&client_id=${client.client_id}&status=inactive&type=access_token`, 200);
    assert.ok(combined.length >= 1);
    for (const e of combined) assert.deepEqual([e.subject, e.client_id, e.status, e.type], [user.id, client.client_id, 'inactive', 'access_token']);
    assert.equal(await isActive(config, revokedGrantFlow.access_token), false);
  });

  test('bad filter values → 400 naming the filter', async () => {
    assertProblem(await api('GET', '/tokens?status=expired'), 400, { field: 'status' });
    assertProblem(await api('GET', '/tokens?type=id_token'), 400, { field: 'type' });
    assertProblem(await api('GET', `/tokens?subject=${'x'.repeat(300)}`), 400, { field: 'subject' });
    assertProblem(await api('GET', '/tokens?status=valid&status=revoked'), 400, { field: 'status' });
  });

  test('limit: default 50, max 200; limit>200 or 0 → 400', async () => {
    const missing = 60 - (await walk('/tokens', 200)).length;
    for (let i = 0; i < missing; i += 10) await Promise.all(Array.from({ length: Math.min(10, missing - i) }, () => clientCredentials(config)));
    const page = await api('GET', '/tokens');
    assert.equal(page.body.items.length, 50, 'default limit 50');
    assert.ok(page.body.next_cursor);
    assert.equal((await api('GET', '/tokens?limit=200')).status, 200);
    assertProblem(await api('GET', '/tokens?limit=201'), 400, { field: 'limit' });
    assertProblem(await api('GET', '/tokens?limit=0'), 400, { field: 'limit' });
  });

  test('limit=2 pages cover every entry exactly once, newest first, and stay stable while tokens are being issued', async () => {
    const path = `/tokens?client_id=${client.client_id}`;
    const everything = await walk(path, 200);
    const paged = await walk(path, 2);
    assert.deepEqual(
      paged.map((e) => e.id),
      everything.map((e) => e.id),
      'limit=2 walks the same entries in the same order',
    );
    const unfiltered = await walk('/tokens', 2);
    assert.equal(new Set(unfiltered.map((e) => e.id)).size, unfiltered.length, 'no duplicates over the whole ledger');
    assert.deepEqual(
      unfiltered.map((e) => e.id),
      (await walk('/tokens', 200)).map((e) => e.id),
    );

    const snapshot = new Set(everything.map((e) => e.id));
    let stop = false;
    let issuedDuring = 0;
    const issuer = (async () => {
      while (!stop) {
        await clientCredentials(config);
        issuedDuring++;
      }
    })();
    const during = await walk(path, 2, () => sleep(10));
    stop = true;
    await issuer;
    assert.ok(issuedDuring > 0, 'tokens were issued during the walk');
    const ids = during.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `no duplicates under inserts (${ids.length} items, ${issuedDuring} issued meanwhile)`);
    for (const id of snapshot) assert.ok(ids.includes(id), `entry ${id} (there before the walk) is not missing`);
    for (let i = 1; i < during.length; i++) {
      const [a, b] = [during[i - 1], during[i]];
      assert.ok(
        a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id),
        `ordered newest first at ${i}: ${a.created_at} ${a.id} / ${b.created_at} ${b.id}`,
      );
    }
    const afterwards = await walk(path, 200);
    assert.equal(afterwards.length, everything.length + issuedDuring, 'one reference entry per issued token');
    const all = new Set(afterwards.map((e) => e.id));
    for (const id of ids) assert.ok(all.has(id));
  });

  test('GET /admin/tokens/{id} → 200 the entry; unknown → 404', async () => {
    const [entry] = (await api('GET', `/tokens?client_id=${client.client_id}&limit=1`)).body.items;
    const answer = await api('GET', `/tokens/${entry.id}`);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, entry);
    assertProblem(await api('GET', `/tokens/${randomUUID()}`), 404, { code: 'not_found' });
    assertProblem(await api('GET', `/tokens/${keptFlow.access_token}`), 404); // a token value is not an entry id
  });

  test('POST /admin/tokens/{id}/revoke → 200 the entry with status revoked; the token is inactive; unknown → 404', async () => {
    const path = `/tokens?client_id=${client.client_id}&type=access_token&status=valid`;
    const known = new Set((await walk(path, 200)).map((e) => e.id));
    const fresh = await clientCredentials(config);
    const added = (await walk(path, 200)).filter((e) => !known.has(e.id));
    assert.equal(added.length, 1, 'one new entry for the new token');
    const entry = added[0];
    assert.equal(await isActive(config, fresh.access_token), true);
    const answer = await api('POST', `/tokens/${entry.id}/revoke`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.id, entry.id);
    assert.equal(answer.body.status, 'revoked');
    assert.deepEqual(Object.keys(answer.body).sort(), LEDGER_FIELDS);
    assert.equal((await api('GET', `/tokens/${entry.id}`)).body.status, 'revoked');
    assert.equal(await isActive(config, fresh.access_token), false, 'the newest access token (the one revoked) is inactive');
    assertProblem(await api('POST', `/tokens/${randomUUID()}/revoke`), 404);
  });

  test('POST /admin/revocations → 200 { revoked: n } (subject, client_id, grant_id); empty body or {} → 400', async () => {
    const other = await newUser();
    const flow = await codeFlow(config, other);
    rememberTokens(flow);
    const live = (await walk(`/tokens?subject=${other.id}`, 200)).filter((e) => e.status === 'valid' || e.status === 'redeemed');
    const bySubject = await api('POST', '/revocations', { body: { subject: other.id } });
    assert.equal(bySubject.status, 200, bySubject.text);
    assert.deepEqual(bySubject.body, { revoked: live.length });
    assert.equal(await isActive(config, flow.access_token), false);
    assert.deepEqual((await api('POST', '/revocations', { body: { subject: other.id } })).body, { revoked: 0 }, 'nothing left to revoke');

    const service = await discover(server, await serviceClient('reference'));
    const serviceToken = await clientCredentials(service);
    const byClient = await api('POST', '/revocations', { body: { client_id: service.clientMetadata().client_id } });
    assert.equal(byClient.status, 200);
    assert.deepEqual(byClient.body, { revoked: 1 });
    assert.equal(await isActive(service, serviceToken.access_token), false);

    const before = await rows();
    assertProblem(await api('POST', '/revocations'), 400);
    assertProblem(await api('POST', '/revocations', { raw: '', contentType: 'application/json' }), 400);
    assertProblem(await api('POST', '/revocations', { body: {} }), 400);
    assert.deepEqual(await rows(), before, 'a refused revocation records nothing');
  });

  test('POST /admin/prune → 200 { deleted: n }: expired entries go, live ones stay', async () => {
    const seeded = Array.from({ length: 3 }, () => randomUUID());
    await insertRows(
      server,
      'token_entries',
      ['id', 'lookup_hash', 'type', 'format', 'status', 'subject', 'client_id', 'created_at', 'expires_at'],
      seeded.map((id) => [
        id,
        randomBytes(32).toString('base64url'),
        'access_token',
        'reference',
        'valid',
        'pruned-user',
        'pruned-client',
        new Date(Date.now() - 7_200_000),
        new Date(Date.now() - 3_600_000),
      ]),
    );
    for (const id of seeded) assert.equal((await api('GET', `/tokens/${id}`)).status, 200);
    const liveBefore = await walk(`/tokens?client_id=${client.client_id}`, 200);

    const answer = await api('POST', '/prune', { body: { older_than_seconds: 0 } });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(Object.keys(answer.body), ['deleted', 'audit_deleted']);
    assert.ok(Number.isInteger(answer.body.deleted) && answer.body.deleted >= 3, answer.text);
    for (const id of seeded) assertProblem(await api('GET', `/tokens/${id}`), 404);
    assert.deepEqual(
      (await walk(`/tokens?client_id=${client.client_id}`, 200)).map((e) => e.id),
      liveBefore.map((e) => e.id),
      'unexpired entries stay',
    );

    const again = await api('POST', '/prune');
    assert.equal(again.status, 200, again.text);
    assert.ok(Number.isInteger(again.body.deleted) && again.body.deleted >= 0);
    const older = await api('POST', '/prune', { body: { older_than_seconds: 86_400 } });
    assert.equal(older.status, 200);
    assertProblem(await api('POST', '/prune', { body: { older_than_seconds: -1 } }), 400, { field: 'older_than_seconds' });
    assertProblem(await api('POST', '/prune', { body: { older_than_seconds: 'soon' } }), 400, { field: 'older_than_seconds' });
    // Past what a date can hold, and merely absurd: refused, not a 500.
    for (const seconds of [Number.MAX_SAFE_INTEGER, 1e15, 200 * 366 * 86_400])
      assertProblem(await api('POST', '/prune', { body: { older_than_seconds: seconds } }), 400, { field: 'older_than_seconds' });
    assertProblem(await api('POST', '/prune', { body: { everything: true } }), 400, { field: 'everything' });
  });

  test('a client that goes away in the middle of its body: nothing recorded as an error', async () => {
    const url = new URL(server.url);
    await new Promise<void>((done) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST /admin/revocations HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"subject":`,
        );
        setTimeout(() => socket.destroy(), 100);
      });
      socket.on('close', () => done());
    });
    await sleep(300);
    assert.doesNotMatch(server.output(), /"level":50[^\n]*admin request failed/);
  });

  test('an id in the path that does not percent-decode → 400 problem, not a 500', async () => {
    for (const [method, path] of [
      ['GET', '/clients/%E0%A4%A'],
      ['PATCH', '/clients/%E0%A4%A'],
      ['DELETE', '/users/%'],
      ['GET', '/tokens/%'],
      ['POST', '/tokens/%ZZ/revoke'],
      ['POST', '/clients/%E0/secret'],
    ] as const) {
      const answer = await api(method, path, method === 'PATCH' ? { body: { client_name: 'x' } } : {});
      assertProblem(answer, 400, { code: 'invalid_request' });
    }
  });
});

// ---------------------------------------------------------------------------------------------------

describe('a client created through the API', () => {
  test('completes client credentials and the code flow with openid-client', async () => {
    const client = await newClient();
    const config = await discover(server, client);
    const service = await clientCredentials(config);
    assert.equal(await isActive(config, service.access_token), true);
    const user = await newUser();
    const tokens = await codeFlow(config, user);
    rememberTokens(tokens);
    assert.equal(tokens.claims()!.sub, user.id, 'the user id is the sub');
    assert.equal(tokens.claims()!.aud, client.client_id);
    assert.ok(tokens.refresh_token);
  });

  test('after POST /admin/clients/{id}/secret the old secret gets invalid_client (401) and the new one works', async () => {
    const client = await newClient();
    const oldConfig = await discover(server, client);
    await clientCredentials(oldConfig); // the old secret works (and is now in the verification cache)
    const rotated = await api('POST', `/clients/${client.client_id}/secret`);
    assert.equal(rotated.status, 200, rotated.text);
    const newSecret = rotated.body.client_secret as string;
    secrets.add(newSecret);

    await assert.rejects(oidc.clientCredentialsGrant(oldConfig, { scope: 'api:read' }), (error: any) => {
      assert.deepEqual(oauthError(error), { error: 'invalid_client', status: 401 }, String(error));
      return true;
    });
    const raw = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api:read' }),
    });
    assert.equal(raw.status, 401);
    assert.equal(((await raw.json()) as { error: string }).error, 'invalid_client');

    const newConfig = await discover(server, { ...client, client_secret: newSecret });
    assert.ok((await clientCredentials(newConfig)).access_token);
    const tokens = await codeFlow(newConfig, await newUser());
    rememberTokens(tokens);
    assert.equal(await isActive(newConfig, tokens.access_token), true);
    // the old secret cannot introspect either
    await assert.rejects(oidc.tokenIntrospection(oldConfig, tokens.access_token), (error: any) => oauthError(error).error === 'invalid_client');
  });
});

// ---------------------------------------------------------------------------------------------------

describe('PATCH token_mode changes the form of the next token', () => {
  test('reference → jwt → stateless → reference', async () => {
    const client = await newClient({ token_mode: 'reference' });
    const config = await discover(server, client);
    const entryIds = new Set<string>();
    for (const mode of ['reference', 'jwt', 'stateless', 'reference'] as Mode[]) {
      const patched = await api('PATCH', `/clients/${client.client_id}`, { body: { token_mode: mode } });
      assert.equal(patched.status, 200, patched.text);
      assert.equal(patched.body.token_mode, mode);
      const { access_token } = await clientCredentials(config);
      if (mode === 'reference') {
        assert.match(access_token, REFERENCE, `${mode}: a 43-character opaque token`);
      } else {
        assert.equal(access_token.split('.').length, 3, `${mode}: a JWT`);
        assert.equal(decodeProtectedHeader(access_token).typ, 'at+jwt');
        const claims = decodeJwt(access_token);
        assert.equal(claims.client_id, client.client_id);
        assert.equal(claims.sub, client.client_id);
      }
      const added = (await walk(`/tokens?client_id=${client.client_id}&type=access_token`, 200)).filter((e) => !entryIds.has(e.id));
      assert.equal(added.length, mode === 'stateless' ? 0 : 1, `${mode}: ledger entries written`);
      if (mode !== 'stateless') assert.equal(added[0].format, mode === 'jwt' ? 'jwt' : 'reference', `${mode}: ledger format`);
      for (const e of added) entryIds.add(e.id);
    }
  });

  test('code flow tokens follow the mode too (jwt: JWT access token, reference refresh token)', async () => {
    const client = await newClient({ token_mode: 'reference' });
    const config = await discover(server, client);
    const user = await newUser();
    const before = await codeFlow(config, user);
    rememberTokens(before);
    assert.match(before.access_token, REFERENCE);
    assert.equal((await api('PATCH', `/clients/${client.client_id}`, { body: { token_mode: 'jwt' } })).status, 200);
    const afterwards = await codeFlow(config, user);
    rememberTokens(afterwards);
    assert.equal(decodeProtectedHeader(afterwards.access_token).typ, 'at+jwt');
    assert.match(afterwards.refresh_token!, REFERENCE);
    assert.equal(await isActive(config, before.access_token), true, 'the earlier token survives the change');
  });
});

// ---------------------------------------------------------------------------------------------------

describe('admin-scoped access tokens', () => {
  for (const mode of MODES) {
    test(`${mode}: scope admin → 200; without admin → 403 insufficient_scope; revoked → 401`, async () => {
      const client = await serviceClient(mode, 'admin api:read');
      const config = await discover(server, client);
      const adminToken = (await clientCredentials(config, 'admin', `${server.url}/admin`)).access_token;
      if (mode === 'reference') assert.match(adminToken, REFERENCE);
      else assert.equal(decodeProtectedHeader(adminToken).typ, 'at+jwt');

      const ok = await api('GET', '/clients', { token: adminToken });
      assert.equal(ok.status, 200, ok.text);
      assertList(ok.body);
      assert.equal((await api('GET', `/clients/${client.client_id}`, { token: adminToken })).status, 200);

      const plain = (await clientCredentials(config, 'api:read')).access_token;
      const denied = await api('GET', '/clients', { token: plain });
      assertProblem(denied, 403, { code: 'insufficient_scope' });
      // a write with it changes nothing
      const before = await rows();
      assertProblem(await api('POST', '/users', { token: plain, body: { username: `sneaky${++counter}`, password: 'long enough password' } }), 403, {
        code: 'insufficient_scope',
      });
      assert.deepEqual(await rows(), before);

      if (mode !== 'reference') {
        // a JWT whose payload was edited to claim admin is not accepted
        const [h, p, s] = plain.split('.');
        const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
        const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${s}`;
        assertProblem(await api('GET', '/clients', { token: forged }), 401);
      }
      assertProblem(await api('GET', '/clients', { token: randomBytes(32).toString('base64url') }), 401);

      await oidc.tokenRevocation(config, adminToken);
      assert.equal(await isActive(config, adminToken), false);
      assertProblem(await api('GET', '/clients', { token: adminToken }), 401);
    });
  }

  test('deleting the client of an admin token locks it out', async () => {
    const client = await serviceClient('jwt', 'admin');
    const config = await discover(server, client);
    const adminToken = (await clientCredentials(config, 'admin', `${server.url}/admin`)).access_token;
    assert.equal((await api('GET', '/clients', { token: adminToken })).status, 200);
    assert.equal((await api('DELETE', `/clients/${client.client_id}`)).status, 204);
    assertProblem(await api('GET', '/clients', { token: adminToken }), 401);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('malformed bodies: a 4xx problem naming the field, and nothing changes', () => {
  let target: RegisteredClient;
  before(async () => {
    target = await newClient({ token_mode: 'reference', client_uri: 'https://app.example.com/' });
  });

  const huge = 'x'.repeat(150 * 1024);

  type Case = { name: string; method: string; path: () => string; options: () => CallOptions; status: number | number[]; field?: string };
  const clients = (name: string, options: () => CallOptions, status: number | number[], field?: string): Case => ({
    name: `POST /admin/clients: ${name}`,
    method: 'POST',
    path: () => '/clients',
    options,
    status,
    ...(field ? { field } : {}),
  });
  const patch = (name: string, options: () => CallOptions, status: number | number[], field?: string): Case => ({
    name: `PATCH /admin/clients/{id}: ${name}`,
    method: 'PATCH',
    path: () => `/clients/${target.client_id}`,
    options,
    status,
    ...(field ? { field } : {}),
  });
  const usersCase = (name: string, options: () => CallOptions, status: number | number[], field?: string): Case => ({
    name: `POST /admin/users: ${name}`,
    method: 'POST',
    path: () => '/users',
    options,
    status,
    ...(field ? { field } : {}),
  });
  const revocations = (name: string, options: () => CallOptions, status: number | number[], field?: string): Case => ({
    name: `POST /admin/revocations: ${name}`,
    method: 'POST',
    path: () => '/revocations',
    options,
    status,
    ...(field ? { field } : {}),
  });
  const userBody = (extra: Record<string, unknown>) => ({ username: `malformed${process.pid}x${counter}`, password: 'a long enough password', ...extra });

  const cases: Case[] = [
    // POST /admin/clients
    clients('client_name is a number', () => ({ body: webMetadata({ client_name: 42 }) }), 400, 'client_name'),
    clients('redirect_uris is a string, not an array', () => ({ body: webMetadata({ redirect_uris: REDIRECT_URI }) }), 400, 'redirect_uris'),
    clients('unknown field', () => ({ body: webMetadata({ colour: 'blue' }) }), 400, 'colour'),
    clients('client_secret given', () => ({ body: webMetadata({ client_secret: 'chosen-by-the-caller-0123456789abcdef' }) }), 400, 'client_secret'),
    clients('huge client_name (5,000 characters)', () => ({ body: webMetadata({ client_name: 'n'.repeat(5000) }) }), 400, 'client_name'),
    clients('redirect URI that is not a URI', () => ({ body: webMetadata({ redirect_uris: ['not a uri'] }) }), 400, 'redirect_uris'),
    clients('relative redirect URI', () => ({ body: webMetadata({ redirect_uris: ['/callback'] }) }), 400, 'redirect_uris'),
    clients('redirect URI with a fragment', () => ({ body: webMetadata({ redirect_uris: ['https://app.example.com/cb#section'] }) }), 400, 'redirect_uris'),
    clients('http redirect URI on a non-loopback host', () => ({ body: webMetadata({ redirect_uris: ['http://app.example.com/cb'] }) }), 400, 'redirect_uris'),
    clients('custom-scheme redirect URI for a web app', () => ({ body: webMetadata({ redirect_uris: ['com.example.app:/cb'] }) }), 400, 'redirect_uris'),
    clients(
      'post_logout_redirect_uri with a fragment',
      () => ({ body: webMetadata({ post_logout_redirect_uris: ['https://app.example.com/bye#x'] }) }),
      400,
      'post_logout_redirect_uris',
    ),
    clients('client_uri that is not a URI', () => ({ body: webMetadata({ client_uri: 'app dot example' }) }), 400, 'client_uri'),
    clients('empty grant_types', () => ({ body: webMetadata({ grant_types: [] }) }), 400, 'grant_types'),
    clients('empty redirect_uris', () => ({ body: webMetadata({ redirect_uris: [] }) }), 400, 'redirect_uris'),
    clients('unknown grant type', () => ({ body: webMetadata({ grant_types: ['password'] }) }), 400, 'grant_types'),
    clients('unknown token_mode', () => ({ body: webMetadata({ token_mode: 'opaque' }) }), 400, 'token_mode'),
    clients('scope as an array', () => ({ body: webMetadata({ scope: ['openid'] }) }), 400, 'scope'),
    clients('client_name null', () => ({ body: webMetadata({ client_name: null }) }), 400, 'client_name'),
    clients('redirect_uris [null]', () => ({ body: webMetadata({ redirect_uris: [null] }) }), 400, 'redirect_uris'),
    clients('code flow without redirect_uris', () => ({ body: webMetadata({ redirect_uris: undefined }) }), 400, 'redirect_uris'),
    clients('duplicate key', () => ({ raw: '{"client_name":"a","redirect_uris":["http://127.0.0.1:9/callback"],"client_name":"b"}' }), 400, 'client_name'),
    clients(
      'duplicate key spelled with an escape',
      () => ({ raw: '{"client_name":"a","client\\u005fname":"b","redirect_uris":["http://127.0.0.1:9/callback"]}' }),
      400,
      'client_name',
    ),
    clients(
      'duplicate key in a nested object',
      () => ({ raw: '{"redirect_uris":["http://127.0.0.1:9/callback"],"jwks":{"keys":[{"kty":"EC"}],"keys":[{"kty":"EC"}]}}' }),
      400,
      'jwks.keys',
    ),
    clients('JSON array', () => ({ raw: '[]' }), 400),
    clients('JSON string', () => ({ raw: '"x"' }), 400),
    clients('JSON number', () => ({ raw: '42' }), 400),
    clients('JSON null', () => ({ raw: 'null' }), 400),
    clients('invalid JSON', () => ({ raw: '{"client_name": "a",' }), 400),
    clients('body over 100 kB', () => ({ raw: JSON.stringify(webMetadata({ client_name: huge })) }), 413),
    clients('body over 100 kB, chunked without Content-Length', () => ({ raw: JSON.stringify(webMetadata({ client_name: huge })), chunked: true }), 413),
    clients('text/plain content type', () => ({ raw: JSON.stringify(webMetadata()), contentType: 'text/plain' }), [400, 415]),
    clients(
      'form content type',
      () => ({ raw: 'client_name=x&redirect_uris=http%3A%2F%2F127.0.0.1%3A9%2Fcallback', contentType: 'application/x-www-form-urlencoded' }),
      [400, 415],
    ),
    clients('no body at all', () => ({}), 400),
    clients('__proto__ member', () => ({ raw: '{"redirect_uris":["http://127.0.0.1:9/callback"],"__proto__":{"token_mode":"stateless"}}' }), 400, '__proto__'),
    clients('array nested 40,000 deep', () => ({ raw: `{"client_name":${'['.repeat(40000)}${']'.repeat(40000)}}` }), 400, 'client_name'),
    clients('default_max_age negative', () => ({ body: webMetadata({ default_max_age: -5 }) }), 400, 'default_max_age'),
    clients('require_auth_time as a string', () => ({ body: webMetadata({ require_auth_time: 'yes' }) }), 400, 'require_auth_time'),
    // PATCH /admin/clients/{id}
    patch('token_mode is a number', () => ({ body: { token_mode: 5 } }), 400, 'token_mode'),
    patch('unknown field', () => ({ body: { is_admin: true } }), 400, 'is_admin'),
    patch('client_secret', () => ({ body: { client_secret: 'chosen-by-the-caller-0123456789abcdef' } }), 400, 'client_secret'),
    patch('client_id change', () => ({ body: { client_id: 'another-id' } }), 400, 'client_id'),
    patch('empty redirect_uris', () => ({ body: { redirect_uris: [] } }), 400, 'redirect_uris'),
    patch('http non-loopback redirect URI', () => ({ body: { redirect_uris: ['http://evil.example.com/cb'] } }), 400, 'redirect_uris'),
    patch('redirect URI with a fragment', () => ({ body: { redirect_uris: ['https://app.example.com/cb#f'] } }), 400, 'redirect_uris'),
    patch('redirect_uris [null]', () => ({ body: { redirect_uris: [null] } }), 400, 'redirect_uris'),
    patch('removing redirect_uris of a code-flow client', () => ({ body: { redirect_uris: null } }), 400, 'redirect_uris'),
    patch('a valid change together with an invalid one', () => ({ body: { client_name: 'Half written?', grant_types: ['password'] } }), 400, 'grant_types'),
    patch('huge client_name', () => ({ body: { client_name: 'n'.repeat(5000) } }), 400, 'client_name'),
    patch('duplicate key', () => ({ raw: '{"token_mode":"jwt","token_mode":"stateless"}' }), 400, 'token_mode'),
    patch('JSON array', () => ({ raw: '[{"token_mode":"jwt"}]' }), 400),
    patch('JSON string', () => ({ raw: '"jwt"' }), 400),
    patch('invalid JSON', () => ({ raw: "{'token_mode':'jwt'}" }), 400),
    patch('body over 100 kB', () => ({ raw: JSON.stringify({ client_name: huge }) }), 413),
    patch('text/plain content type', () => ({ raw: '{"token_mode":"jwt"}', contentType: 'text/plain' }), [400, 415]),
    patch('no body at all', () => ({}), 400),
    patch('__proto__ member', () => ({ raw: '{"__proto__":{"token_mode":"stateless"}}' }), 400, '__proto__'),
    patch('constructor member', () => ({ raw: '{"constructor":{"prototype":{"token_mode":"stateless"}}}' }), 400, 'constructor'),
    // POST /admin/users
    usersCase('username is a number', () => ({ body: userBody({ username: 42 }) }), 400, 'username'),
    usersCase('password is a number', () => ({ body: userBody({ password: 123456789 }) }), 400, 'password'),
    usersCase('password null', () => ({ body: userBody({ password: null }) }), 400, 'password'),
    usersCase('no username', () => ({ body: { password: 'a long enough password' } }), 400, 'username'),
    usersCase('no password', () => ({ body: { username: `nopw${process.pid}` } }), 400, 'password'),
    usersCase('unknown field', () => ({ body: userBody({ is_admin: true }) }), 400, 'is_admin'),
    usersCase('password_hash given', () => ({ body: userBody({ password_hash: '$argon2id$v=19$m=65536,t=3,p=4$x$y' }) }), 400, 'password_hash'),
    usersCase('email that is not an email', () => ({ body: userBody({ email: 'not-an-email' }) }), 400, 'email'),
    usersCase('email null', () => ({ body: userBody({ email: null }) }), 400, 'email'),
    usersCase('username with spaces', () => ({ body: userBody({ username: 'two words' }) }), 400, 'username'),
    usersCase('empty username', () => ({ body: userBody({ username: '' }) }), 400, 'username'),
    usersCase('huge name', () => ({ body: userBody({ name: 'n'.repeat(5000) }) }), 400, 'name'),
    usersCase('huge username', () => ({ body: userBody({ username: 'u'.repeat(5000) }) }), 400, 'username'),
    usersCase(
      'duplicate key',
      () => ({ raw: `{"username":"dup${process.pid}a","password":"a long enough password","username":"dup${process.pid}b"}` }),
      400,
      'username',
    ),
    usersCase('JSON array', () => ({ raw: '[]' }), 400),
    usersCase('JSON number', () => ({ raw: '42' }), 400),
    usersCase('invalid JSON', () => ({ raw: '{"username":' }), 400),
    usersCase('body over 100 kB', () => ({ raw: JSON.stringify(userBody({ name: huge })) }), 413),
    usersCase('text/plain content type', () => ({ raw: JSON.stringify(userBody({})), contentType: 'text/plain' }), [400, 415]),
    // POST /admin/revocations
    revocations('empty object', () => ({ body: {} }), 400),
    revocations('no body at all', () => ({}), 400),
    revocations('subject is a number', () => ({ body: { subject: 5 } }), 400, 'subject'),
    revocations('client_id is an array', () => ({ body: { client_id: ['a'] } }), 400, 'client_id'),
    revocations('grant_id null', () => ({ body: { grant_id: null } }), 400, 'grant_id'),
    revocations('empty subject', () => ({ body: { subject: '' } }), 400, 'subject'),
    revocations('unknown field', () => ({ body: { user: 'someone' } }), 400, 'user'),
    revocations('a valid field with an unknown one', () => ({ body: { subject: 'someone', everything: true } }), 400, 'everything'),
    revocations('huge subject', () => ({ body: { subject: 's'.repeat(5000) } }), 400, 'subject'),
    revocations('duplicate key', () => ({ raw: '{"subject":"a","subject":"b"}' }), 400, 'subject'),
    revocations('JSON array', () => ({ raw: '[{"subject":"a"}]' }), 400),
    revocations('JSON nested 45,000 deep', () => ({ raw: `${'['.repeat(45000)}${']'.repeat(45000)}` }), 400),
    revocations('JSON string', () => ({ raw: '"a"' }), 400),
    revocations('invalid JSON', () => ({ raw: '{subject: a}' }), 400),
    revocations('body over 100 kB', () => ({ raw: JSON.stringify({ subject: huge }) }), 413),
    revocations('form content type', () => ({ raw: 'subject=a', contentType: 'application/x-www-form-urlencoded' }), [400, 415]),
  ];

  async function state() {
    const clientsList = await walk('/clients', 200);
    const one = await api('GET', `/clients/${target.client_id}`);
    return { clients: clientsList, target: one.body, rows: await rows() };
  }

  test(`at least thirty kinds (${cases.length} cases)`, () => assert.ok(cases.length >= 30));

  for (const c of cases) {
    test(c.name, async () => {
      counter++;
      const before = await state();
      const answer = await api(c.method, c.path(), c.options());
      assertProblem(answer, c.status, c.field ? { field: c.field } : {});
      const afterwards = await state();
      assert.deepEqual(afterwards.rows, before.rows, 'no table gained or lost a row');
      assert.deepEqual(afterwards.target, before.target, 'the PATCH target is unchanged');
      assert.deepEqual(afterwards.clients, before.clients, 'the client list is unchanged');
      assert.equal(afterwards.rows.users, before.rows.users, 'the users count is unchanged');
    });
  }

  test('after a 413 for a chunked body, that connection answers the next request or is closed, never left hanging', async () => {
    const socket = connect(Number(server.env.PORT), '127.0.0.1');
    let received = '';
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (d) => (received += d));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    await new Promise((done) => socket.once('connect', done));
    const until = async (ok: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !ok() && Date.now() < end; ) await sleep(20);
    };
    try {
      socket.write(
        `POST /admin/clients HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      );
      // a well-behaved client: the whole message, in 8 KiB chunks, then the last chunk
      for (const piece of ['{"client_name":"', ...Array.from({ length: 16 }, () => 'y'.repeat(8192)), '"}']) {
        if (closed) break;
        socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
        await sleep(5);
      }
      if (!closed) socket.write('0\r\n\r\n');
      await until(() => /\r\n\r\n[\s\S]*\}$/.test(received) || closed, 5000);
      assert.match(received, /^HTTP\/1\.1 413 /, 'the oversized body gets 413');
      const said = /\r\nconnection: *(\S+)/i.exec(received)?.[1] ?? '(none)';
      received = '';
      await sleep(200);
      if (!closed) socket.write(`GET /admin/clients?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`);
      await until(() => closed || /^HTTP\/1\.1 200 /.test(received), 3000);
      assert.ok(
        closed || /^HTTP\/1\.1 200 /.test(received),
        `the 413 said "Connection: ${said}", yet the next request on that connection got no answer within 3 s and the connection stayed open`,
      );
    } finally {
      socket.destroy();
    }
  });

  /** Streams `total` bytes of body on a raw socket, 8 KiB at a time; what the client saw. */
  async function streamOversized(path: string, total: number, contentLength: boolean) {
    const socket = connect(Number(server.env.PORT), '127.0.0.1');
    let received = '';
    let writeError: string | undefined;
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (d) => (received += d));
    socket.on('close', () => (closed = true));
    socket.on('error', (e: NodeJS.ErrnoException) => (writeError = e.code));
    await new Promise((done) => socket.once('connect', done));
    const framing = contentLength ? `Content-Length: ${total}` : 'Transfer-Encoding: chunked';
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`);
    let sent = 0;
    while (sent < total && !closed && !writeError) {
      const piece = 'z'.repeat(Math.min(8192, total - sent));
      socket.write(contentLength ? piece : `${piece.length.toString(16)}\r\n${piece}\r\n`);
      sent += piece.length;
      await sleep(1);
    }
    if (!closed && !writeError && !contentLength) socket.write('0\r\n\r\n');
    for (const end = Date.now() + 5000; !closed && !/\}$/.test(received) && Date.now() < end; ) await sleep(20);
    socket.destroy();
    return { received, writeError, sent };
  }

  test('a client still sending an oversized body gets to send it all and reads the 413, never a reset', async () => {
    for (const [path, contentLength] of [
      ['/admin/clients', false],
      ['/admin/clients', true],
      ['/token', true],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const { received, writeError, sent } = await streamOversized(path, 400 * 1024, contentLength);
        const what = `${path}, ${contentLength ? 'Content-Length' : 'chunked'}`;
        assert.equal(writeError, undefined, `${what}: the connection failed under the client (${writeError}) after ${sent} bytes`);
        assert.equal(sent, 400 * 1024, what);
        assert.match(received, /^HTTP\/1\.1 413 /, `${what}: ${JSON.stringify(received.slice(0, 40))}`);
        assert.match(received, path === '/token' ? /"error":"invalid_request"/ : /"code":"body_too_large"/);
      }
    }
  });

  test('a client streaming far past the limit is cut off after about 1 MiB more', async () => {
    const { writeError, sent } = await streamOversized('/admin/clients', 8 * 1024 * 1024, false);
    assert.ok(writeError !== undefined || sent < 8 * 1024 * 1024, 'the connection was cut');
    assert.ok(sent < 4 * 1024 * 1024, `the server kept reading: ${sent} bytes sent`);
  });

  test('the server still answers normally after all that', async () => {
    const answer = await api('PATCH', `/clients/${target.client_id}`, { body: { client_name: 'Still fine' } });
    assert.equal(answer.status, 200, answer.text);
    assert.equal((await api('GET', '/clients?limit=1')).status, 200);
  });
});

// ---------------------------------------------------------------------------------------------------

test('the CLI takes the body of POST /admin/clients: it refuses what the API refuses (http non-loopback redirect URI, unknown field)', async () => {
  const before = await rows();
  for (const body of [webMetadata({ redirect_uris: ['http://evil.example.com/cb'], colour: 'blue' })]) {
    const api400 = JSON.stringify(body);
    const result = runCli(server.env, ['clients', 'create', '--json', api400]);
    if (result.status === 0) {
      const created = JSON.parse(result.stdout);
      if (created.client_secret) secrets.add(created.client_secret);
    }
    assert.notEqual(result.status, 0, `tally clients create --json '${api400}' should fail like the API's 400, but printed ${result.stdout.slice(0, 200)}`);
  }
  assert.equal((await rows()).clients, before.clients);
});

// ---------------------------------------------------------------------------------------------------

test('secrets and passwords never appear after creation: not in any answer, not in the logs, not in the database', async () => {
  // Explicit reads of everything that could carry them
  for (const client of await walk('/clients', 200)) {
    assert.equal(client.client_secret, undefined);
    await api('GET', `/clients/${client.client_id}`);
  }
  await walk('/tokens', 200);

  assert.ok(secrets.size > 20, `collected ${secrets.size} secrets`);
  const creations = exchanges.filter((e) => {
    try {
      return typeof JSON.parse(e.text)?.client_secret === 'string';
    } catch {
      return false;
    }
  });
  for (const e of creations)
    assert.ok(
      (e.method === 'POST' && (e.path === '/clients' || e.path.endsWith('/secret'))) || e.method === 'PATCH',
      `a secret only comes back at creation, not from ${e.method} ${e.path}`,
    );
  const others = exchanges.filter((e) => !creations.includes(e));
  assert.ok(others.length > 100);
  for (const secret of secrets) {
    // (a 404 may echo an id the caller put in the URL; that is not a leak)
    for (const e of others)
      if (!e.path.includes(secret)) assert.ok(!e.text.includes(secret), `${secret.slice(0, 6)}… appears in the answer to ${e.method} ${e.path}`);
  }
  for (const e of exchanges) assert.ok(!/\$argon2|hmac-sha256\$/.test(e.text), `no hash in the answer to ${e.method} ${e.path}`);

  const log = server.output();
  assert.match(log, /Tally is serving/, 'the log was captured');
  for (const secret of secrets) assert.ok(!log.includes(secret), `${secret.slice(0, 6)}… appears in the server log`);

  // SQLite: every byte of the file, its WAL and shared memory; PostgreSQL: every column of every row.
  const bytes = await databaseContents(server);
  assert.ok(bytes.length > 0);
  for (const secret of secrets) assert.ok(!bytes.includes(Buffer.from(secret)), `${secret.slice(0, 6)}… is stored in the clear (${server.dialect})`);
});
