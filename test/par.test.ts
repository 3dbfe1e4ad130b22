import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { Browser } from './helpers/browser.ts';
import { createUser, createWebClient, REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { authorizationRequest, discover, signInAndConsent } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Pushed authorization requests (RFC 9126): advertised, a code flow through them with openid-client,
// required per client (`require_pushed_authorization_requests`) or server-wide (REQUIRE_PAR).

/** A code flow whose authorization request is pushed first; returns the token response. */
async function codeFlowWithPar(server: TestServer, client: RegisteredClient, user: { username: string; password: string }) {
  const config = await discover(server, client);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = await oidc.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile',
    state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
  const callback = await signInAndConsent(new Browser(), url.href, user);
  return oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
}

/** Where a plain (not pushed) authorization request ends: the error it is refused with, or a page. */
async function plainRequest(server: TestServer, client: RegisteredClient) {
  const { url } = await authorizationRequest(await discover(server, client), 'openid profile');
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  const redirect = location ? new URL(location, url) : undefined;
  return { status: response.status, error: redirect?.searchParams.get('error'), description: redirect?.searchParams.get('error_description') ?? '' };
}

describe('PAR, optional (the default)', () => {
  let server: TestServer;
  let user: { username: string; password: string };
  before(async () => {
    server = await startServer();
    user = createUser(server);
  });
  after(() => server?.stop());

  test('discovery advertises the endpoint, not a requirement', async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(discovery.pushed_authorization_request_endpoint, `${server.url}/request`);
    assert.equal(discovery.require_pushed_authorization_requests, undefined);
  });

  test('openid-client pushes the request → the code flow completes', async () => {
    const tokens = await codeFlowWithPar(server, createWebClient(server), user);
    assert.ok(tokens.access_token);
    assert.ok(tokens.id_token);
  });

  test('a plain authorization request still works for an ordinary client', async () => {
    const { status, error } = await plainRequest(server, createWebClient(server));
    assert.equal(status, 303);
    assert.equal(error, null);
  });

  test('a client registered with require_pushed_authorization_requests → a plain request refused, a pushed one served', async () => {
    const client = createWebClient(server, { require_pushed_authorization_requests: true });
    assert.equal(client.require_pushed_authorization_requests, true);
    const { error, description } = await plainRequest(server, client);
    assert.equal(error, 'invalid_request');
    assert.match(description, /pushed authorization request/i);
    assert.ok((await codeFlowWithPar(server, client, user)).access_token);
  });
});

describe('REQUIRE_PAR=true', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { REQUIRE_PAR: 'true' } });
  });
  after(() => server?.stop());

  test('discovery says so; every client must push its authorization request', async () => {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(discovery.require_pushed_authorization_requests, true);
    const client = createWebClient(server);
    const { error } = await plainRequest(server, client);
    assert.equal(error, 'invalid_request');
    assert.ok((await codeFlowWithPar(server, client, createUser(server))).access_token);
  });

  test('REQUIRE_PAR that is not true or false stops the server, naming the variable', async () => {
    await assert.rejects(startServer({ env: { REQUIRE_PAR: 'sometimes' } }), /REQUIRE_PAR/);
  });
});
