import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Introspection is answered by Tally directly when the request is one it covers (a reference token,
// a client secret sent with HTTP Basic and verified before), else by oidc-provider. The answers must
// not differ: every case below is asked both ways and compared byte for byte.

let server: TestServer;
let resourceServer: RegisteredClient;
let counter = 0;

async function newClient(mode: string, extra: Record<string, unknown> = {}): Promise<RegisteredClient> {
  const answer = await admin(server, 'POST', '/clients', {
    client_name: `${mode} app ${++counter}`,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    scope: 'openid profile email offline_access api:read',
    token_mode: mode,
    ...extra,
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

async function newUser() {
  const username = `direct${process.pid}x${++counter}`;
  const password = `password-${counter}-${Math.random()}`;
  const answer = await admin(server, 'POST', '/users', { username, password });
  assert.equal(answer.status, 201);
  return { id: answer.body.id as string, username, password };
}

const basic = (client: RegisteredClient, secret = client.client_secret!) =>
  `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

interface Answer {
  status: number;
  text: string;
  headers: Record<string, string>;
}

/** POST /token/introspection; `post` sends the client's credentials in the body (client_secret_post). */
async function introspect(params: Record<string, string | string[]>, how: 'basic' | 'post' = 'basic', headers: Record<string, string> = {}, client = resourceServer): Promise<Answer> {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) for (const one of [value].flat()) form.append(name, one);
  if (how === 'post') {
    form.append('client_id', client.client_id);
    form.append('client_secret', client.client_secret!);
  }
  const response = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(how === 'basic' ? { authorization: basic(client) } : {}), ...headers },
    body: form,
  });
  return { status: response.status, text: await response.text(), headers: Object.fromEntries(response.headers) };
}

async function answeredBy(): Promise<{ direct: number; provider: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (path: string) => Number(new RegExp(`^tally_introspections_total\\{path="${path}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { direct: value('direct'), provider: value('provider') };
}

/** Headers that describe the connection or the moment, not the answer. */
const VOLATILE = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
const stable = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).filter(([name]) => !VOLATILE.has(name)));

/** Asks oidc-provider (client_secret_post) and then Tally directly (Basic): the answers must be the same. */
async function bothWays(params: Record<string, string>): Promise<Record<string, unknown>> {
  const before = await answeredBy();
  const byProvider = await introspect(params, 'post');
  const direct = await introspect(params, 'basic');
  const afterwards = await answeredBy();
  assert.deepEqual({ direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider }, { direct: 1, provider: 1 }, 'one answer each way');
  assert.equal(direct.status, 200);
  assert.equal(direct.text, byProvider.text, 'the same JSON, field for field and in the same order');
  assert.deepEqual(stable(direct.headers), stable(byProvider.headers));
  return JSON.parse(direct.text);
}

/** The request goes to oidc-provider; its answer is returned. */
async function byProvider(params: Record<string, string | string[]>, headers: Record<string, string> = {}, client = resourceServer): Promise<Answer> {
  const before = await answeredBy();
  const answer = await introspect(params, 'basic', headers, client);
  const afterwards = await answeredBy();
  assert.deepEqual({ direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider }, { direct: 0, provider: 1 });
  return answer;
}

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  resourceServer = await newClient('reference', { client_name: 'resource server', grant_types: ['client_credentials'], response_types: [] });
  // The first use of the secret is verified by oidc-provider (argon2); later ones may be answered directly.
  assert.equal((await byProvider({ token: 'x'.repeat(43) })).status, 200);
});
after(() => server.stop());

describe('the same answer whoever answers', () => {
  test("a client's own reference token (client credentials)", async () => {
    const client = await newClient('reference');
    const config = await discover(server, client);
    const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    const body = await bothWays({ token: access_token });
    assert.equal(body.active, true);
    assert.equal(body.client_id, client.client_id);
    assert.equal(body.sub, client.client_id);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'api:read');
    assert.deepEqual(await bothWays({ token: access_token, token_type_hint: 'refresh_token' }), body);
  });

  test("a user's access and refresh tokens, with and without hints; after revocation, inactive", async () => {
    const client = await newClient('reference');
    const user = await newUser();
    const config = await discover(server, client);
    const tokens = await codeFlow(config, user);
    const access = await bothWays({ token: tokens.access_token });
    assert.equal(access.active, true);
    assert.equal(access.sub, user.id);
    assert.equal(typeof access.grant_id, 'string');
    assert.equal(access.token_type, 'Bearer');
    assert.deepEqual(await bothWays({ token: tokens.access_token, token_type_hint: 'access_token' }), access);
    assert.deepEqual(await bothWays({ token: tokens.access_token, token_type_hint: 'urn:ietf:params:oauth:token-type:refresh_token' }), access);

    const refresh = await bothWays({ token: tokens.refresh_token!, token_type_hint: 'refresh_token' });
    assert.equal(refresh.active, true);
    assert.equal(refresh.token_type, undefined, 'a refresh token has no token_type at introspection');
    assert.deepEqual(await bothWays({ token: tokens.refresh_token! }), refresh);

    // Revoking the refresh token ends the grant: the access token goes with it.
    await oidc.tokenRevocation(config, tokens.refresh_token!);
    assert.deepEqual(await bothWays({ token: tokens.access_token }), { active: false });
    assert.deepEqual(await bothWays({ token: tokens.refresh_token! }), { active: false });
  });

  test('a revoked token, an unknown one and one revoked through the admin API: inactive', async () => {
    const client = await newClient('reference');
    const config = await discover(server, client);
    const first = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    await oidc.tokenRevocation(config, first.access_token);
    assert.deepEqual(await bothWays({ token: first.access_token }), { active: false });
    assert.deepEqual(await bothWays({ token: 'A'.repeat(43) }), { active: false });

    const second = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    assert.equal((await bothWays({ token: second.access_token })).active, true);
    assert.equal((await admin(server, 'POST', '/revocations', { client_id: client.client_id })).status, 200);
    assert.deepEqual(await bothWays({ token: second.access_token }), { active: false });
  });
});

describe('left to oidc-provider', () => {
  let token: string;
  before(async () => {
    const config = await discover(server, await newClient('reference'));
    token = (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
  });

  test('a JWT access token (jwt mode)', async () => {
    const config = await discover(server, await newClient('jwt'));
    const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    const answer = await byProvider({ token: access_token });
    assert.equal(JSON.parse(answer.text).active, true);
  });

  test('a wrong secret: 401 invalid_client, with nothing answered directly', async () => {
    const answer = await byProvider({ token }, {}, { ...resourceServer, client_secret: 'not-the-secret' });
    assert.equal(answer.status, 401);
    assert.equal(JSON.parse(answer.text).error, 'invalid_client');
  });

  test('a missing or repeated token parameter: 400 invalid_request', async () => {
    assert.equal((await byProvider({})).status, 400);
    assert.equal((await byProvider({ token: '' })).status, 400);
    const repeated = await byProvider({ token: [token, token] });
    assert.equal(repeated.status, 400);
    assert.equal(JSON.parse(repeated.text).error, 'invalid_request');
  });

  test('client_id in the body besides Basic, a CORS request, a charset other than UTF-8', async () => {
    assert.equal(JSON.parse((await byProvider({ token, client_id: resourceServer.client_id })).text).active, true);
    // oidc-provider checks the origin against the client's redirect URIs (clientBasedCORS).
    const cors = await byProvider({ token }, { origin: 'https://elsewhere.example' });
    assert.equal(cors.status, 400);
    assert.match(JSON.parse(cors.text).error_description, /origin .* not allowed/);
    assert.equal((await byProvider({ token }, { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' })).status, 200);
  });

  test('after the secret is rotated, the old one is refused and the new one is verified by oidc-provider first', async () => {
    const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    assert.equal((await byProvider({ token }, {}, client)).status, 200);
    assert.equal((await introspect({ token }, 'basic', {}, client)).status, 200);
    const rotated = await admin(server, 'POST', `/clients/${client.client_id}/secret`);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal((await byProvider({ token }, {}, client)).status, 401);
    assert.equal((await byProvider({ token }, {}, { ...client, client_secret: rotated.body.client_secret })).status, 200);
  });
});
