import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { Browser, parseForms } from './helpers/browser.ts';
import { countRows, query } from './helpers/db.ts';
import { createClient, createUser, createWebClient, REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { discover, signInAndConsent } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

describe('bad input gets the right 4xx in the protocol shape, never a 500', () => {
  let server: TestServer;
  let web: RegisteredClient;
  let user: ReturnType<typeof createUser>;
  let config: oidc.Configuration;
  const basic = (client: RegisteredClient = web) =>
    `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`;

  before(async () => {
    server = await startServer();
    web = createWebClient(server);
    user = createUser(server);
    config = await discover(server, web);
  });
  after(() => server.stop());

  async function token(body: Record<string, string> | string, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: typeof body === 'string' ? body : new URLSearchParams(body),
    });
    const json = (await response.json()) as { error?: string; error_description?: string };
    return { status: response.status, ...json };
  }

  /** Asserts an RFC 6749 error and that no table gained or lost a row. */
  async function expectOAuthError(run: () => Promise<{ status: number; error?: string; error_description?: string }>, status: number, error: string) {
    const before = await countRows(server);
    const answer = await run();
    assert.equal(answer.status, status, JSON.stringify(answer));
    assert.equal(answer.error, error);
    assert.equal(typeof answer.error_description, 'string');
    // A failed client authentication is counted against the client and address (the throttle): by design.
    const { throttle_counters: _before, ...rest } = before;
    const { throttle_counters: _after, ...now } = await countRows(server);
    assert.deepEqual(now, rest, 'nothing was written');
  }

  test('malformed token request (no grant_type) → 400 invalid_request', () =>
    expectOAuthError(() => token({ scope: 'openid' }, { authorization: basic() }), 400, 'invalid_request'));

  test('unsupported grant type → 400 unsupported_grant_type', () =>
    expectOAuthError(() => token({ grant_type: 'password', username: 'a', password: 'b' }, { authorization: basic() }), 400, 'unsupported_grant_type'));

  test('unknown client → 401 invalid_client', () =>
    expectOAuthError(
      () => token({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('nobody:nothing').toString('base64')}` }),
      401,
      'invalid_client',
    ));

  test('wrong client secret → 401 invalid_client', () =>
    expectOAuthError(
      () => token({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`${web.client_id}:wrong-secret`).toString('base64')}` }),
      401,
      'invalid_client',
    ));

  test('the stored hash presented as the secret → 401 invalid_client', async () => {
    const [row] = await query<{ secret_hash: string }>(server, 'SELECT secret_hash FROM clients WHERE id = ?', web.client_id);
    await expectOAuthError(() => token({ grant_type: 'client_credentials', client_id: web.client_id, client_secret: row!.secret_hash }), 401, 'invalid_client');
  });

  test('oversized body → 413 in the OAuth error shape', () =>
    expectOAuthError(() => token(`grant_type=client_credentials&pad=${'a'.repeat(100_000)}`, { authorization: basic() }), 413, 'invalid_request'));

  test('JSON body at the token endpoint → 400 invalid_request', () =>
    expectOAuthError(
      () => token('{"grant_type":"client_credentials"}', { authorization: basic(), 'content-type': 'application/json' }),
      400,
      'invalid_request',
    ));

  test('unknown token at introspection → active false; at revocation → 200', async () => {
    assert.equal((await oidc.tokenIntrospection(config, 'not-a-token')).active, false);
    await oidc.tokenRevocation(config, 'not-a-token');
  });

  test('replayed authorization code → 400 invalid_grant, and the first tokens are revoked with it', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const callback = await signInAndConsent(new Browser(), url.href, user);
    const code = callback.searchParams.get('code')!;
    const exchange = () => token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }, { authorization: basic() });
    const first = (await exchange()) as { status: number; access_token?: string };
    assert.equal(first.status, 200);
    const second = await exchange();
    assert.equal(second.status, 400);
    assert.equal(second.error, 'invalid_grant');
    assert.equal((await oidc.tokenIntrospection(config, first.access_token!)).active, false, 'a replayed code revokes what it issued');
  });

  test('the same authorization code raced by 8 requests → exactly one success', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const callback = await signInAndConsent(new Browser(), url.href, user);
    const code = callback.searchParams.get('code')!;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }, { authorization: basic() }),
      ),
    );
    assert.equal(answers.filter((a) => a.status === 200).length, 1, JSON.stringify(answers.map((a) => a.status)));
    for (const a of answers.filter((x) => x.status !== 200)) assert.equal(a.error, 'invalid_grant');
  });

  test('login form with a bad CSRF token → 403 page, and no sign-in happens', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = new Browser();
    const page = await browser.navigate(url.href);
    const [login] = parseForms(page.html, page.url);
    const before = await countRows(server);
    const forged = await browser.submit(login!, { username: user.username, password: user.password, _csrf: 'forged' });
    assert.equal(forged.response.status, 403);
    assert.match(forged.html, /role="alert"/);
    assert.deepEqual(await countRows(server), before);
    const stillLogin = await browser.navigate(page.url);
    assert.ok('password' in parseForms(stillLogin.html, stillLogin.url)[0]!.fields, 'the interaction still asks for a login');
  });

  test('interaction page without its cookie → 4xx error page, not a 500', async () => {
    const response = await fetch(`${server.url}/interaction/does-not-exist`);
    assert.ok(response.status >= 400 && response.status < 500, String(response.status));
    assert.match(response.headers.get('content-type') ?? '', /html/);
  });

  test('authorization request for an unknown client → 400 error page', async () => {
    const response = await fetch(`${server.url}/auth?client_id=nobody&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`, {
      redirect: 'manual',
    });
    assert.equal(response.status, 400);
  });

  test('PKCE: plain method refused; a public client without a code_challenge refused', async () => {
    const plain = `${server.url}/auth?client_id=${web.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge_method=plain&code_challenge=${'a'.repeat(43)}`;
    const refusedPlain = await fetch(plain, { redirect: 'manual' });
    assert.equal(refusedPlain.status, 303);
    assert.match(refusedPlain.headers.get('location')!, /error=invalid_request/);

    const spa = createClient(server, {
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    });
    assert.equal(spa.client_secret, undefined, 'a public client gets no secret');
    const noChallenge = await fetch(
      `${server.url}/auth?client_id=${spa.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`,
      { redirect: 'manual' },
    );
    assert.equal(noChallenge.status, 303);
    assert.match(noChallenge.headers.get('location')!, /error=invalid_request&error_description=[^&]*PKCE/);
  });
  /** One request through node:http (fetch will not send a forged Host, or a chunked body in chunks). */
  function raw(
    method: string,
    path: string,
    headers: Record<string, string>,
    chunks: string[] = [],
  ): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(`${server.url}${path}`, { method, headers }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, text }));
      });
      request.on('error', reject);
      const next = (i: number) => (i < chunks.length ? request.write(chunks[i], () => next(i + 1)) : request.end());
      next(0);
    });
  }

  test('Host and X-Forwarded-* headers, malformed or not, are ignored: every URL is built from ISSUER', async () => {
    for (const path of ['/.well-known/openid-configuration', '/session/end', '/device']) {
      for (const headers of [
        { host: '[::' },
        { 'x-forwarded-host': 'a b' },
        { 'x-forwarded-proto': 'ht tp' },
        { 'x-forwarded-host': 'evil.example' },
      ] as Record<string, string>[]) {
        const answer = await raw('GET', path, headers);
        assert.ok(answer.status < 500, `${path} ${JSON.stringify(headers)}: ${answer.status} ${answer.text}`);
      }
    }
    const forged = await raw('GET', '/.well-known/openid-configuration', {
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      host: 'evil.example',
    });
    assert.equal(forged.status, 200);
    const discovery = JSON.parse(forged.text);
    assert.equal(discovery.issuer, server.url);
    assert.ok(discovery.token_endpoint.startsWith(`${server.url}/`), discovery.token_endpoint);
    assert.doesNotMatch(forged.text, /evil\.example/);
    assert.doesNotMatch(server.output(), /Invalid URL/);
  });

  test('a chunked body past 56 KiB at the revocation endpoint → 413, and the token it names stays active', async () => {
    const worker = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
    const workerConfig = await discover(server, worker);
    const { access_token } = await oidc.clientCredentialsGrant(workerConfig, { scope: 'api:read' });
    const body = `token=${access_token}&pad=${'A'.repeat(70 * 1024)}`;
    const chunks = body.match(/[\s\S]{1,4096}/g)!;
    const headers = { authorization: basic(worker), 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' };
    const answer = await raw('POST', '/token/revocation', headers, chunks);
    assert.equal(answer.status, 413, answer.text);
    assert.equal(JSON.parse(answer.text).error, 'invalid_request');
    assert.equal((await oidc.tokenIntrospection(workerConfig, access_token)).active, true, 'nothing done on a part of the body');
    // Within the limit, chunked is fine.
    const small = await raw('POST', '/token/revocation', headers, [`token=${access_token.slice(0, 10)}`, access_token.slice(10)]);
    assert.equal(small.status, 200, small.text);
    assert.equal((await oidc.tokenIntrospection(workerConfig, access_token)).active, false);
  });

  test('a client gone in the middle of its body at a protocol endpoint: no stack trace printed', async () => {
    const url = new URL(server.url);
    for (const path of ['/token/revocation', '/me']) {
      await new Promise<void>((done) => {
        const socket = connect(Number(url.port), url.hostname, () => {
          socket.write(
            `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${basic()}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=abc`,
          );
          setTimeout(() => socket.destroy(), 100);
        });
        socket.on('close', () => done());
      });
    }
    await new Promise((done) => setTimeout(done, 300));
    assert.doesNotMatch(server.output(), /Error: aborted|^\s+at /m);
  });

  test('a path or method the protocol does not serve → 404 in the OAuth error shape', async () => {
    for (const [method, path] of [
      ['GET', '/token'],
      ['PUT', '/me'],
      ['POST', '/jwks'],
      ['GET', '/nowhere'],
    ] as const) {
      const answer = await raw(method, path, {});
      assert.equal(answer.status, 404, `${method} ${path}`);
      assert.match(String(answer.headers['content-type']), /^application\/json/);
      assert.match(JSON.parse(answer.text).error_description, new RegExp(`${method} ${path}`));
    }
  });
});
