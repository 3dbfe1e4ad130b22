import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { Browser, parseForms } from './helpers/browser.ts';
import { createClient, createUser, createWebClient, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { onPostgres, startServer, tallyNode, type TestServer } from './helpers/server.ts';

describe(`OpenID Connect flows with openid-client on a real ${onPostgres ? 'PostgreSQL database' : 'SQLite file'}`, () => {
  let server: TestServer;
  let web: RegisteredClient;
  let user: ReturnType<typeof createUser>;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer();
    web = createWebClient(server);
    user = createUser(server);
    config = await discover(server, web);
  });
  after(() => server.stop());

  test('the server runs on the node the suite names (Node 22 of the Docker image, in its pass of scripts/run-tests.mjs)', () => {
    assert.equal(realpathSync(`/proc/${server.pid}/exe`), realpathSync(tallyNode));
  });

  test('discovery → every contract endpoint is advertised under the issuer', () => {
    const meta = config.serverMetadata();
    assert.equal(meta.issuer, server.url);
    for (const key of [
      'authorization_endpoint',
      'token_endpoint',
      'userinfo_endpoint',
      'jwks_uri',
      'introspection_endpoint',
      'revocation_endpoint',
      'end_session_endpoint',
      'device_authorization_endpoint',
    ] as const) {
      assert.ok(String(meta[key]).startsWith(server.url), `${key} is under the issuer`);
    }
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.ok(!meta.token_endpoint_auth_methods_supported?.includes('client_secret_jwt'), 'client_secret_jwt is not offered');
  });

  test('client credentials → a 43-character reference token that introspects active with sub = client_id', async () => {
    const service = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read api:write' });
    const serviceConfig = await discover(server, service);
    const tokens = await oidc.clientCredentialsGrant(serviceConfig, { scope: 'api:read' });
    assert.match(tokens.access_token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(tokens.scope, 'api:read');
    const info = await oidc.tokenIntrospection(serviceConfig, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.client_id, service.client_id);
    assert.equal(info.aud, server.url, 'default audience is the issuer');
  });

  test('authorization code + PKCE through the login and consent forms → tokens, userinfo, id_token claims', async () => {
    const tokens = await codeFlow(config, user);
    assert.match(tokens.access_token, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(tokens.refresh_token, 'offline_access with prompt=consent gives a refresh token');
    assert.ok(tokens.id_token);
    const claims = tokens.claims()!;
    assert.equal(claims.sub, user.id);
    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.id);
    assert.equal(info.sub, user.id);
    assert.equal(info.preferred_username, user.username);
    assert.equal(info.email, `${user.username}@example.com`);
    assert.equal(info.name, 'Test User');
    const introspected = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(introspected.active, true);
    assert.equal(introspected.sub, user.id);
    assert.match(String(introspected.scope), /openid/);
  });

  test('refresh → rotates: a new refresh token, and the old one no longer works', async () => {
    const first = await codeFlow(config, user);
    const second = await oidc.refreshTokenGrant(config, first.refresh_token!);
    assert.ok(second.refresh_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.notEqual(second.access_token, first.access_token);
    assert.equal((await oidc.tokenIntrospection(config, first.refresh_token!)).active, false, 'the rotated refresh token is inactive');
    assert.equal((await oidc.tokenIntrospection(config, second.refresh_token!)).active, true);
    const third = await oidc.refreshTokenGrant(config, second.refresh_token!);
    assert.ok(third.access_token);
    assert.equal((await oidc.fetchUserInfo(config, third.access_token, user.id)).sub, user.id);
  });

  test('wrong password → the login page again with a visible error, not a redirect', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: web.redirect_uris ? (web.redirect_uris as string[])[0]! : '',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const browser = new Browser();
    const page = await browser.navigate(url.href);
    const [login] = parseForms(page.html, page.url);
    const again = await browser.submit(login!, { username: user.username, password: 'not-the-password' });
    assert.equal(again.response.status, 401);
    assert.match(again.html, /role="alert"[^>]*>Wrong username or password/);
    assert.ok('username' in parseForms(again.html, again.url)[0]!.fields);
  });

  test('device flow → the user enters the code, signs in, consents; the device gets tokens', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile' });
    assert.ok(device.user_code);
    const browser = new Browser();
    let page = await browser.navigate(device.verification_uri);
    const [entry] = parseForms(page.html, page.url);
    assert.ok('user_code' in entry!.fields, 'the verification page has a user_code input');
    page = await browser.submit(entry!, { user_code: device.user_code });
    const [confirm] = parseForms(page.html, page.url);
    assert.equal(confirm!.fields.confirm, 'yes');
    page = await browser.submit(confirm!);
    const [login] = parseForms(page.html, page.url);
    page = await browser.submit(login!, { username: user.username, password: user.password });
    const [allow] = parseForms(page.html, page.url);
    page = await browser.submit(allow!);
    assert.equal(page.response.status, 200);
    assert.match(page.html, /Device connected/);
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, { ...device, interval: 0.01 });
    assert.ok(tokens.access_token);
    assert.equal((await oidc.fetchUserInfo(config, tokens.access_token, user.id)).sub, user.id);
  });
});
