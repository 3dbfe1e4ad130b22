// The defects found from outside (issue 13), each asked the way it was found, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { ADMIN_KEY, admin } from './helpers/admin.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import { query } from './helpers/db.ts';
import { createWebClient, type RegisteredClient } from './helpers/fixtures.ts';
import { discover } from './helpers/oauth.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

describe('bad input found from outside → a 4xx in the protocol shape, never a 500', () => {
  let server: TestServer;
  let web: RegisteredClient;
  const basic = (client: RegisteredClient) => `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
  /** Server error lines (pino level 50 and up) logged since `mark`. */
  const errorsSince = (mark: number) =>
    server
      .output()
      .slice(mark)
      .split('\n')
      .filter((line) => /"level":(50|60)/.test(line));

  before(async () => {
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, LOG_LEVEL: 'info' } });
    web = createWebClient(server);
  });
  after(() => server.stop());

  test('device pages without the session cookie → 400 pages, nothing logged as failed', async () => {
    const mark = server.output().length;
    const form = (body: string, type = 'application/x-www-form-urlencoded') => ({ method: 'POST', headers: { 'content-type': type }, body });
    const cases: [string, RequestInit?][] = [
      ['/device/bogus-uid'],
      ['/device', form('xsrf=forged&user_code=ABCD-EFGH')],
      ['/device', form('user_code=ABCD-EFGH')],
      ['/device', form(`xsrf=forged&user_code=${'A'.repeat(40_000)}`)],
      ['/device', form('{"user_code":"ABCD-EFGH"}', 'application/json')],
      ['/device/', form('xsrf=forged&user_code=ABCD-EFGH')],
    ];
    for (const [path, init] of cases) {
      const response = await fetch(`${server.url}${path}`, { ...init, redirect: 'manual' });
      const label = `${init?.method ?? 'GET'} ${path}`;
      assert.ok(response.status >= 400 && response.status < 500, `${label}: ${response.status}`);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/, label);
      assert.match(await response.text(), /<html/i, label);
    }
    assert.doesNotMatch(server.output().slice(mark), /persist can only be called/);
    assert.deepEqual(errorsSince(mark), []);
  });

  test('the form on a device error page reached without the cookie can be submitted: its session was kept', async () => {
    const browser = new Browser();
    const refused = await browser.navigate(`${server.url}/device`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'xsrf=forged',
    });
    assert.equal(refused.response.status, 400);
    const [form] = parseForms(refused.html, refused.url);
    assert.ok(form?.fields.xsrf, 'the page offers the user-code form again');
    const device = await oidc.initiateDeviceAuthorization(await discover(server, web), { scope: 'openid' });
    const next = await browser.submit(form, { user_code: device.user_code });
    assert.equal(next.response.status, 200, next.html.slice(0, 300));
    assert.doesNotMatch(next.html, /could not find device form details/);
  });

  test('X-Forwarded-Proto whose first value is empty (",,,") is ignored like any forwarded header from an untrusted peer: never a 500', async () => {
    for (const proto of [',,,', ',https', ' , ']) {
      const answer = await rawRequest(
        server.url,
        `GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: ${proto}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(answer.status, 200, `${JSON.stringify(proto)}: ${answer.body}`);
      assert.equal(JSON.parse(answer.body).issuer, server.url);
    }
    assert.doesNotMatch(server.output(), /Invalid URL/);
  });

  test('control characters or lone surrogates in user and client text → 400 naming the field, on every database', async () => {
    const username = `nul${process.pid}`;
    for (const [path, body, field] of [
      ['/users', { username, password: 'long enough password', name: 'a\u0000b' }, 'name'],
      ['/users', { username, password: 'long enough password', name: 'tab\there' }, 'name'],
      ['/users', { username, password: 'long enough password', name: 'lone \ud800 surrogate' }, 'name'],
      ['/users', { username: 'a\u0000b', password: 'long enough password' }, 'username'],
      ['/users', { username, password: 'long enough password', email: 'a\u0000b@example.com' }, 'email'],
      ['/clients', { client_name: 'a\u0000b', grant_types: ['client_credentials'], response_types: [] }, 'client_name'],
      ['/clients', { client_name: 'x', contacts: ['a\u0007b'], grant_types: ['client_credentials'], response_types: [] }, 'contacts.0'],
    ] as const) {
      const answer = await admin(server, 'POST', path, body);
      assert.equal(answer.status, 400, `${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.field, field);
    }
    const created = await admin(server, 'POST', '/users', { username, password: 'long enough password', name: 'Zoë 🦊' });
    assert.equal(created.status, 201, 'non-ASCII names are fine');
  });

  test('an admin write with %00 in its path id → 404, and its audit row is recorded with the id escaped', async () => {
    const mark = server.output().length;
    const answer = await admin(server, 'POST', '/tokens/%00x%1F/revoke');
    assert.equal(answer.status, 404);
    await new Promise((done) => setTimeout(done, 200));
    const rows = await query<{ target_id: string }>(server, `SELECT "target_id" FROM "audit_events" WHERE "action" = 'revokeToken' ORDER BY "created_at" DESC`);
    assert.equal(rows[0]?.target_id, '\\u0000x\\u001f');
    assert.doesNotMatch(server.output().slice(mark), /audit event not recorded/);
  });

  test('Last-Event-ID beyond any event id the feed can hold → 400 at once, never a stream that hangs', async () => {
    const auth = basic(web);
    for (const [name, path, header] of [
      ['one past the largest', '/revocations/stream', '2147483648'],
      ['20 digits', '/revocations/stream', '99999999999999999999'],
      ['in the query', '/revocations/stream?last_event_id=99999999999999999999', undefined],
    ] as const) {
      const answer = await rawRequest(
        server.url,
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${auth}\r\n${header ? `Last-Event-ID: ${header}\r\n` : ''}Connection: close\r\n\r\n`,
        3000,
      );
      assert.equal(answer.status, 400, `${name}: ${answer.status} ${answer.body}`);
      assert.equal(JSON.parse(answer.body).error, 'invalid_request', name);
    }
    const largest = await rawRequest(
      server.url,
      `GET /revocations/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${auth}\r\nLast-Event-ID: 2147483647\r\n\r\n`,
      1000,
    );
    assert.equal(largest.status, 200, 'the largest id the feed holds still resumes');
    assert.match(largest.body, /: connected/);
  });

  test('"redirect_uris": [] and other empty lists mean none: a client-credentials client registers', async () => {
    const answer = await admin(server, 'POST', '/clients', {
      client_name: 'RFC 7591 tool',
      redirect_uris: [],
      post_logout_redirect_uris: [],
      contacts: [],
      grant_types: ['client_credentials'],
      response_types: [],
      scope: 'api:read',
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const token = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: basic(answer.body), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=api:read',
    });
    assert.equal(token.status, 200);
    const resourceServer = await admin(server, 'POST', '/clients', { client_name: 'API', grant_types: [], response_types: [], redirect_uris: [] });
    assert.equal(resourceServer.status, 201, 'a client with no grant at all (introspection only)');
    const codeFlow = await admin(server, 'POST', '/clients', {
      client_name: 'web',
      redirect_uris: [],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    });
    assert.equal(codeFlow.status, 400, 'where redirect URIs are needed, none is refused');
    assert.equal(codeFlow.body.field, 'redirect_uris');
  });

  test('404 under /revocations/ → OAuth JSON, whatever the Accept header', async () => {
    for (const [method, path] of [
      ['GET', '/revocations/nothing'],
      ['POST', '/revocations/stream'],
      ['GET', '/revocations/'],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { method, headers: { accept: 'text/html' } });
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(typeof (await response.json()).error, 'string');
    }
  });

  test('POST /admin/prune with the body null → 400; with no body, the defaults', async () => {
    const refused = await admin(server, 'POST', '/prune', 'null');
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const defaults = await admin(server, 'POST', '/prune');
    assert.equal(defaults.status, 200);
  });

  test('a request with two Host headers → 400 in the shape of where it was sent', async () => {
    for (const path of ['/.well-known/openid-configuration', '/token', '/healthz', '/interaction/x', '/admin/clients']) {
      const answer = await rawRequest(
        server.url,
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nAuthorization: Bearer ${ADMIN_KEY}\r\n\r\n`,
      );
      assert.equal(answer.status, 400, `${path}: ${answer.status} ${answer.body}`);
      const body = JSON.parse(answer.body);
      if (path.startsWith('/admin')) {
        assert.match(answer.headers['content-type'] ?? '', /^application\/problem\+json/);
        assert.equal(body.status, 400);
      } else assert.equal(body.error, 'invalid_request');
    }
  });
});
