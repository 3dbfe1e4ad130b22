import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { createValidator } from '../src/kits/validator/index.ts';
import { countsOf } from './helpers/direct-provider.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Introspection by audience (CONTRACT.md): the issuing client sees its own access and refresh tokens;
// another client sees an access token only when its `aud` names one of that client's
// `introspection_audiences`; a refresh token never; anyone else `{"active": false}`. Every answer is
// asked of oidc-provider (client_secret_post) and of Tally's direct answer (HTTP Basic; reference
// tokens only, the others go on to oidc-provider) and must be the same. And PKCE for every client.

const API = 'https://api.example.com';
const MODES = ['reference', 'jwt', 'stateless'] as const;

let server: TestServer;
before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
});
after(() => server.stop());

const ccOnly = { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
const basic = (client: RegisteredClient) =>
  `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`;

async function introspectOnce(client: RegisteredClient, token: string, how: 'basic' | 'post'): Promise<string> {
  const form = new URLSearchParams({ token });
  if (how === 'post') {
    form.append('client_id', client.client_id);
    form.append('client_secret', client.client_secret!);
  }
  const response = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(how === 'basic' ? { authorization: basic(client) } : {}) },
    body: form,
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

/** The answer to `client`, asked both ways: the same text whoever answers. */
async function introspect(client: RegisteredClient, token: string): Promise<Record<string, unknown>> {
  const byProvider = await introspectOnce(client, token, 'post');
  const direct = await introspectOnce(client, token, 'basic');
  assert.equal(direct, byProvider, 'the same answer from the direct path and from oidc-provider');
  return JSON.parse(direct);
}

const answers = async () => countsOf(await (await fetch(`${server.url}/metrics`)).text(), 'introspection');

/** A confidential client whose secret Tally has verified once (so that HTTP Basic may be answered directly). */
async function confidential(mode: string, extra: Record<string, unknown>): Promise<RegisteredClient> {
  const client = await registerClient(server, mode, extra);
  await introspectOnce(client, 'x'.repeat(43), 'basic');
  return client;
}

for (const mode of MODES) {
  describe(`${mode} mode: who sees what at introspection`, () => {
    let app: RegisteredClient;
    let tokens: { forApi: string; refresh: string; forOther: string; forIssuer: string };

    before(async () => {
      app = await confidential(mode, { client_name: `${mode} app` });
      const config = await discover(server, app);
      const flow = await codeFlow(config, await registerUser(server), 'openid api:read offline_access', { resource: API });
      assert.ok(flow.refresh_token);
      tokens = {
        forApi: flow.access_token,
        refresh: flow.refresh_token,
        forOther: (await oidc.clientCredentialsGrant(config, { scope: 'api:read', resource: 'https://other.example.com' })).access_token,
        forIssuer: (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token,
      };
    });

    test('the issuing client sees its access and refresh tokens, each with its token_type', async () => {
      const before = await answers();
      const access = await introspect(app, tokens.forApi);
      assert.equal(access.active, true);
      assert.equal(access.token_type, 'Bearer');
      assert.equal(access.aud, API);
      const refresh = await introspect(app, tokens.refresh);
      assert.equal(refresh.active, true);
      assert.equal(refresh.token_type, 'refresh_token');
      assert.equal(refresh.client_id, app.client_id);
      const own = await introspect(app, tokens.forOther);
      assert.equal(own.token_type, 'Bearer');
      const counts = await answers();
      assert.ok(counts.provider - before.provider >= 3, 'oidc-provider answered');
      if (mode === 'reference') assert.equal(counts.direct - before.direct, 3, 'reference tokens over Basic: answered directly');
    });

    test(`a resource server registered for ${API} sees the access token for it, not one for another audience nor the refresh token`, async () => {
      const resourceServer = await confidential('reference', { ...ccOnly, introspection_audiences: [API] });
      const before = await answers();
      const access = await introspect(resourceServer, tokens.forApi);
      assert.equal(access.active, true);
      assert.equal(access.client_id, app.client_id);
      assert.equal(access.token_type, 'Bearer');
      assert.deepEqual(await introspect(resourceServer, tokens.forOther), { active: false });
      assert.deepEqual(await introspect(resourceServer, tokens.forIssuer), { active: false });
      assert.deepEqual(await introspect(resourceServer, tokens.refresh), { active: false });
      if (mode === 'reference') assert.equal((await answers()).direct - before.direct, 4, 'the direct answer applied the rule');
    });

    test("tally/validator on the issuing client's credentials: its access token passes, its refresh token does not", async () => {
      const validator = createValidator({ issuer: server.url, audience: API, clientId: app.client_id, clientSecret: app.client_secret! });
      try {
        assert.equal((await validator.validate(tokens.forApi)).active, true);
        assert.deepEqual(await validator.validate(tokens.refresh), { active: false });
      } finally {
        await validator.close();
      }
    });

    test('the issuer as an audience: tokens issued without resource; no audiences: nothing of others', async () => {
      const ofIssuer = await confidential('reference', { ...ccOnly, introspection_audiences: [server.url] });
      assert.equal((await introspect(ofIssuer, tokens.forIssuer)).active, true);
      assert.deepEqual(await introspect(ofIssuer, tokens.forApi), { active: false });
      assert.deepEqual(await introspect(ofIssuer, tokens.refresh), { active: false });
      for (const extra of [{}, { introspection_audiences: [] }]) {
        const stranger = await confidential('reference', { ...ccOnly, ...extra });
        for (const token of Object.values(tokens)) assert.deepEqual(await introspect(stranger, token), { active: false });
      }
    });
  });
}

describe('introspection_audiences and require_pkce: metadata', () => {
  test('accepted, shown in the client view, changed by PATCH', async () => {
    const client = await registerClient(server, 'reference', { ...ccOnly, introspection_audiences: [API, server.url] });
    assert.deepEqual(client.introspection_audiences, [API, server.url]);
    const patched = await admin(server, 'PATCH', `/clients/${client.client_id}`, { introspection_audiences: [], require_pkce: false });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const shown = await admin(server, 'GET', `/clients/${client.client_id}`);
    assert.deepEqual(shown.body.introspection_audiences, []);
    assert.equal(shown.body.require_pkce, false);
    const cli = JSON.parse(server.cli(['clients', 'create', '--json', JSON.stringify({ ...ccOnly, introspection_audiences: [API] })]));
    assert.deepEqual(cli.introspection_audiences, [API]);
  });

  test('bad values → 400 naming the field', async () => {
    const bad: [string, unknown][] = [
      ['introspection_audiences', API],
      ['introspection_audiences', ['not a uri']],
      ['introspection_audiences', [`${API}/\u0007`]],
      ['introspection_audiences', [1]],
      ['introspection_audiences', Array.from({ length: 21 }, (_, i) => `${API}/${i}`)],
      ['require_pkce', 'no'],
    ];
    for (const [field, value] of bad) {
      const answer = await admin(server, 'POST', '/clients', { ...ccOnly, [field]: value });
      assert.equal(answer.status, 400, `${field}: ${JSON.stringify(value)}`);
      assert.equal(answer.body.field?.split('.')[0], field, JSON.stringify(answer.body));
    }
  });

  test('a public client with require_pkce false → 400 naming require_pkce, at creation and by PATCH', async () => {
    const spa = { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' };
    const refused = await admin(server, 'POST', '/clients', { ...spa, require_pkce: false });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.field, 'require_pkce');
    const ok = await admin(server, 'POST', '/clients', { ...spa, require_pkce: true });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const patched = await admin(server, 'PATCH', `/clients/${ok.body.client_id}`, { require_pkce: false });
    assert.equal(patched.status, 400);
    assert.equal(patched.body.field, 'require_pkce');
  });
});

describe('PKCE for every client', () => {
  /** GET /auth without a code_challenge; where it sends the browser. */
  async function authorizeWithoutPkce(client: RegisteredClient): Promise<URL> {
    const query = new URLSearchParams({ client_id: client.client_id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, state: 's' });
    const response = await fetch(`${server.url}/auth?${query}`, { redirect: 'manual' });
    assert.ok([302, 303].includes(response.status), `a redirect, got ${response.status}`);
    return new URL(response.headers.get('location')!, server.url);
  }

  test('a confidential client without code_challenge → invalid_request at the authorization endpoint', async () => {
    const client = await registerClient(server, 'reference');
    const location = await authorizeWithoutPkce(client);
    assert.equal(location.origin + location.pathname, REDIRECT_URI);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.match(location.searchParams.get('error_description') ?? '', /PKCE/);
  });

  test('a confidential client with require_pkce false → signs in without PKCE', async () => {
    const client = await registerClient(server, 'reference', { require_pkce: false });
    const location = await authorizeWithoutPkce(client);
    assert.match(location.pathname, /^\/interaction\//, `to the login page, not ${location.href}`);
  });
});
