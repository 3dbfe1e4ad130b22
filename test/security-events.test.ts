import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Browser } from './helpers/browser.ts';
import { createUser, createWebClient, REDIRECT_URI } from './helpers/fixtures.ts';
import { discover, signInAndConsent } from './helpers/oauth.ts';
import { rawRequest } from './helpers/raw-http.ts';
import { securityEventCount, startServer, type TestServer } from './helpers/server.ts';

// Security events seen from outside. A rotated refresh token presented again, and an authorization code redeemed twice, revoke their grant
// (oidc-provider) and are security events: a log line with `event` and a count on /metrics.

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

const securityEvents = (event: string) => securityEventCount(server, event);

const tokenRequest = (client: { client_id: string; client_secret?: string }, body: Record<string, string>) =>
  fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams(body),
  });

test('a replayed authorization code and a reused refresh token: invalid_grant, counted and logged as code_replayed and refresh_token_reused', async () => {
  const client = createWebClient(server);
  const user = createUser(server);
  const config = await discover(server, client);
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid offline_access',
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const callback = await signInAndConsent(new Browser(), url.href, user);
  const code = callback.searchParams.get('code')!;
  const redeem = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier };
  const before = { code: await securityEvents('code_replayed'), refresh: await securityEvents('refresh_token_reused') };

  const first = await tokenRequest(client, redeem);
  assert.equal(first.status, 200);
  const { refresh_token } = await first.json();
  const replay = await tokenRequest(client, redeem);
  assert.equal(replay.status, 400);
  assert.equal((await replay.json()).error, 'invalid_grant');
  assert.equal((await securityEvents('code_replayed')) - before.code, 1);

  // The replay revoked the grant; a second sign-in gives a refresh token to rotate and then reuse.
  const second = await oidc.authorizationCodeGrant(config, await signInAndConsent(new Browser(), url.href, user), { pkceCodeVerifier: verifier });
  assert.ok(refresh_token);
  const rotated = await tokenRequest(client, { grant_type: 'refresh_token', refresh_token: second.refresh_token! });
  assert.equal(rotated.status, 200);
  const reused = await tokenRequest(client, { grant_type: 'refresh_token', refresh_token: second.refresh_token! });
  assert.equal(reused.status, 400);
  assert.equal((await securityEvents('refresh_token_reused')) - before.refresh, 1);
  assert.match(server.output(), /"event":"refresh_token_reused"/);
  assert.match(server.output(), /"event":"code_replayed"/);
});

test('a JWT claiming this issuer but signed by another key: inactive at introspection, counted and logged as forged_token', async () => {
  const client = createWebClient(server);
  const { privateKey } = await generateKeyPair('ES256');
  const now = Math.floor(Date.now() / 1000);
  const forged = await new SignJWT({ client_id: client.client_id, scope: 'openid', jti: 'forged-jti-0123456789' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'not-ours' })
    .setIssuer(server.url)
    .setSubject('someone')
    .setAudience(server.url)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(privateKey);
  const before = await securityEvents('forged_token');
  const answer = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token: forged }),
  });
  assert.deepEqual(await answer.json(), { active: false });
  assert.equal((await securityEvents('forged_token')) - before, 1);
  assert.match(server.output(), /"event":"forged_token"/);
});

test('requests the HTTP parser refuses are counted and logged as malformed_http, without their bytes; a client that hangs up mid-request is not', async () => {
  const { port } = new URL(server.url);
  const secret = 'Bearer do-not-log-me-0123456789';
  const before = await securityEvents('malformed_http');
  const logFrom = server.output().length;

  // Request smuggling's shape: a Content-Length and a Transfer-Encoding both.
  const smuggled = await rawRequest(
    server.url,
    `POST /token HTTP/1.1\r\nHost: localhost:${port}\r\nAuthorization: ${secret}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  );
  assert.equal(smuggled.status, 400);
  // Header lines larger than the parser takes.
  const oversized = await rawRequest(server.url, `GET /admin/clients HTTP/1.1\r\nHost: localhost:${port}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.equal(oversized.status, 431);
  // Garbage pipelined after a good request: its answer has gone out, so the connection is only closed.
  const pipelined = await rawRequest(server.url, `GET /healthz HTTP/1.1\r\nHost: localhost:${port}\r\n\r\nGARBAGE ${secret}\r\n\r\n`);
  assert.equal(pipelined.status, 200);
  assert.equal((await securityEvents('malformed_http')) - before, 3);

  const lines = (await server.outputUntil((output) => (output.slice(logFrom).match(/"event":"malformed_http"/g)?.length ?? 0) >= 3))
    .slice(logFrom)
    .split('\n')
    .filter((line) => line.includes('"event":"malformed_http"'));
  assert.equal(lines.length, 3, lines.join('\n'));
  const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    events.map(({ code, status, ip }) => ({ code, status, ip })),
    [
      { code: 'HPE_INVALID_TRANSFER_ENCODING', status: 400, ip: '127.0.0.1' },
      { code: 'HPE_HEADER_OVERFLOW', status: 431, ip: '127.0.0.1' },
      { code: 'HPE_INVALID_METHOD', status: 400, ip: '127.0.0.1' },
    ],
  );
  assert.doesNotMatch(server.output(), /do-not-log-me/, "the request's bytes are not logged");

  // A request cut short by the client closing its side: nothing was refused.
  const cutShort = connect(Number(port), '127.0.0.1');
  cutShort.end(`GET /healthz HTTP/1.1\r\nHost: localhost:${port}\r\nX-Half: `);
  cutShort.resume();
  await once(cutShort, 'close');
  assert.equal((await securityEvents('malformed_http')) - before, 3);
});
