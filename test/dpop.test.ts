import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerResourceServer, registerUser } from './helpers/admin.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import { countsOf } from './helpers/direct-provider.ts';
import { createClient, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// DPoP (RFC 9449) at the token endpoint, for every grant and in every token mode, with openid-client
// as the client: the token is bound to the client's key (the JWT's cnf.jkt, introspection's token_type
// DPoP and cnf, the ledger entry's cnf), and without that key a stolen token is refused at userinfo and
// a public client's refresh token at the refresh grant.

const MODES = ['reference', 'jwt', 'stateless'] as const;
type Mode = (typeof MODES)[number];

let server: TestServer;
let resourceServer: RegisteredClient;
let user: { id: string; username: string; password: string };

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  resourceServer = await registerResourceServer(server);
  user = await registerUser(server);
});
after(() => server.stop());

interface Key {
  DPoP: oidc.DPoPHandle;
  jkt: string;
}

async function newKey(config: oidc.Configuration): Promise<Key> {
  const keyPair = await oidc.randomDPoPKeyPair();
  return { DPoP: oidc.getDPoPHandle(config, keyPair), jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)) };
}

/** openid-client's rejection of an OAuth error answer with this `error` code. */
const oauthError = (code: string) => (error: unknown) => (error as { cause?: { error?: string } }).cause?.error === code;

const basic = (client: RegisteredClient) =>
  `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`;

/** The resource server's introspection of a token (answered directly for reference tokens, by oidc-provider otherwise). */
async function introspect(token: string, client = resourceServer): Promise<Record<string, any>> {
  const response = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
  return response.json() as Promise<Record<string, any>>;
}

/** The code flow with PKCE, the token request carrying a proof of `key`. */
const dpopCodeFlow = (config: oidc.Configuration, key: Key) => codeFlow(config, user, 'openid profile offline_access', {}, undefined, { DPoP: key.DPoP });

/** The device flow: the user enters the code, signs in and consents; the device polls with a proof of `key`. */
async function dpopDeviceFlow(config: oidc.Configuration, key: Key) {
  const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile' });
  const browser = new Browser();
  let page = await browser.navigate(device.verification_uri);
  page = await browser.submit(parseForms(page.html, page.url)[0]!, { user_code: device.user_code });
  page = await browser.submit(parseForms(page.html, page.url)[0]!);
  page = await browser.submit(parseForms(page.html, page.url)[0]!, { username: user.username, password: user.password });
  page = await browser.submit(parseForms(page.html, page.url)[0]!);
  assert.match(page.html, /Device connected/);
  return oidc.pollDeviceAuthorizationGrant(config, { ...device, interval: 0.01 }, undefined, { DPoP: key.DPoP });
}

/** The token is bound to `key` wherever it is looked at: the response, the JWT, introspection, the ledger entry. */
async function assertBound(mode: Mode, client: RegisteredClient, tokens: { access_token: string; token_type?: string }, key: Key, unbound = 0) {
  assert.equal(tokens.token_type?.toLowerCase(), 'dpop');
  if (mode !== 'reference') assert.deepEqual(decodeJwt(tokens.access_token).cnf, { jkt: key.jkt });
  const body = await introspect(tokens.access_token);
  assert.equal(body.active, true);
  assert.equal(body.token_type, 'DPoP');
  assert.deepEqual(body.cnf, { jkt: key.jkt });
  const entries = (await admin(server, 'GET', `/tokens?client_id=${client.client_id}&type=access_token`)).body.items as Record<string, unknown>[];
  if (mode === 'stateless') {
    assert.equal(entries.length, 0, 'stateless tokens have no entry');
  } else {
    assert.ok(entries.length > unbound);
    const bound = entries.filter((entry) => entry.cnf !== undefined);
    assert.equal(bound.length, entries.length - unbound, 'the unbound entries have no cnf');
    for (const entry of bound) assert.deepEqual(entry.cnf, { jkt: key.jkt }, 'the ledger entry shows the key');
  }
}

/** Userinfo takes the token only with a proof of its key: not as Bearer, not with another key's proof. */
async function assertUserinfoNeedsKey(config: oidc.Configuration, accessToken: string, key: Key) {
  const userinfo = config.serverMetadata().userinfo_endpoint!;
  const bearer = await fetch(userinfo, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(bearer.status, 401, 'a bound token presented as Bearer is refused');
  await assert.rejects(oidc.fetchUserInfo(config, accessToken, user.id, { DPoP: (await newKey(config)).DPoP }), 'a proof of another key is refused');
  assert.equal((await oidc.fetchUserInfo(config, accessToken, user.id, { DPoP: key.DPoP })).sub, user.id);
}

for (const mode of MODES) {
  describe(`${mode} mode: every grant gives a DPoP-bound token`, () => {
    test('authorization code with PKCE, then refresh: bound, and userinfo wants the key', async () => {
      const client = await registerClient(server, mode);
      const config = await discover(server, client);
      const key = await newKey(config);
      const tokens = await dpopCodeFlow(config, key);
      await assertBound(mode, client, tokens, key);
      await assertUserinfoNeedsKey(config, tokens.access_token, key);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: key.DPoP });
      await assertBound(mode, client, refreshed, key);
      await assertUserinfoNeedsKey(config, refreshed.access_token, key);
    });

    test('client credentials: bound', async () => {
      const client = await registerClient(server, mode, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
      const config = await discover(server, client);
      const key = await newKey(config);
      await assertBound(mode, client, await oidc.clientCredentialsGrant(config, { scope: 'api:read' }, { DPoP: key.DPoP }), key);
    });

    test('device code: bound, and userinfo wants the key', async () => {
      const client = await registerClient(server, mode, {
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
        response_types: [],
        redirect_uris: [],
      });
      const config = await discover(server, client);
      const key = await newKey(config);
      const tokens = await dpopDeviceFlow(config, key);
      await assertBound(mode, client, tokens, key);
      await assertUserinfoNeedsKey(config, tokens.access_token, key);
    });

    test("a public client's refresh token is bound too: refused with another key or without a proof, taken with its own", async () => {
      const client = await registerClient(server, mode, { token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
      const config = await discover(server, client);
      const key = await newKey(config);
      const tokens = await dpopCodeFlow(config, key);
      await assertBound(mode, client, tokens, key);
      await assert.rejects(
        oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: (await newKey(config)).DPoP }),
        oauthError('invalid_grant'),
      );
      await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), oauthError('invalid_grant'));
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: key.DPoP });
      await assertBound(mode, client, refreshed, key);
    });
  });
}

describe('dpop_bound_access_tokens', () => {
  test('accepted by the admin API and the CLI; true makes a token request without a proof fail', async () => {
    const viaApi = await registerClient(server, 'jwt', {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      dpop_bound_access_tokens: true,
    });
    assert.equal(viaApi.dpop_bound_access_tokens, true);
    const viaCli = createClient(server, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], dpop_bound_access_tokens: true });
    assert.equal(viaCli.dpop_bound_access_tokens, true);
    for (const client of [viaApi, viaCli]) {
      const config = await discover(server, client);
      await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'api:read' }), oauthError('invalid_grant'));
      const key = await newKey(config);
      assert.equal((await oidc.clientCredentialsGrant(config, { scope: 'api:read' }, { DPoP: key.DPoP })).token_type?.toLowerCase(), 'dpop');
    }
    const wrong = await admin(server, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], dpop_bound_access_tokens: 'yes' });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.field, 'dpop_bound_access_tokens');
  });
});

test('the direct client-credentials answer takes a request with a DPoP proof and binds the token (test/direct-answers.test.ts compares it with oidc-provider)', async () => {
  const client = await registerClient(server, 'reference', { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
  const config = await discover(server, client);
  await oidc.clientCredentialsGrant(config, { scope: 'api:read' }); // the secret is verified: later requests may be answered directly
  const counts = async () => countsOf(await (await fetch(`${server.url}/metrics`)).text(), 'token');
  const before = await counts();
  const key = await newKey(config);
  const tokens = await oidc.clientCredentialsGrant(config, { scope: 'api:read' }, { DPoP: key.DPoP });
  const afterwards = await counts();
  assert.equal(afterwards.provider - before.provider, 0);
  assert.equal(afterwards.direct - before.direct, 1);
  await assertBound('reference', client, tokens, key, 1);
});
