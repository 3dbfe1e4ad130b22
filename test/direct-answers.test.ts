import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Introspection and the client credentials grant are answered by Tally directly when the request is
// one it covers (a client secret sent with HTTP Basic and verified before; a reference token to
// introspect; no resource or authorization details), else by oidc-provider. The answers must not
// differ: every case below is asked both ways and compared.

let server: TestServer;
let resourceServer: RegisteredClient;
let counter = 0;

const newClient = (mode: string, extra: Record<string, unknown> = {}) => registerClient(server, mode, { client_name: `${mode} app ${++counter}`, ...extra });
const newUser = () => registerUser(server);

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

async function answeredBy(endpoint = 'introspection'): Promise<{ direct: number; provider: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (by: string) => Number(new RegExp(`^tally_protocol_answers_total\\{endpoint="${endpoint}",answered_by="${by}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { direct: value('tally'), provider: value('oidc-provider') };
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

describe('introspection: the same answer whoever answers', () => {
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

describe('introspection left to oidc-provider', () => {
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

  test('a deleted client is refused at once, though its secret was verified a moment before', async () => {
    const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    assert.equal((await byProvider({ token }, {}, client)).status, 200);
    assert.equal((await introspect({ token }, 'basic', {}, client)).status, 200);
    assert.equal((await admin(server, 'DELETE', `/clients/${client.client_id}`)).status, 204);
    const refused = await byProvider({ token }, {}, client);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.text).error, 'invalid_client');
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

/** POST /token with client_credentials; `post` sends the credentials in the body. */
async function clientCredentials(client: RegisteredClient, how: 'basic' | 'post', params: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Answer> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', ...params });
  if (how === 'post') {
    form.append('client_id', client.client_id);
    form.append('client_secret', client.client_secret!);
  }
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(how === 'basic' ? { authorization: basic(client) } : {}), ...headers },
    body: form,
  });
  return { status: response.status, text: await response.text(), headers: Object.fromEntries(response.headers) };
}

/** Claims that differ between any two tokens. */
const PER_TOKEN = new Set(['jti', 'iat', 'exp']);
const shared = (claims: Record<string, unknown>) => Object.fromEntries(Object.entries(claims).filter(([name]) => !PER_TOKEN.has(name)));

/** One token from oidc-provider (client_secret_post) and one from Tally directly (Basic), compared. */
async function issueBothWays(client: RegisteredClient, params: Record<string, string> = {}) {
  const before = await answeredBy('token');
  const byProvider = await clientCredentials(client, 'post', params);
  const direct = await clientCredentials(client, 'basic', params);
  const afterwards = await answeredBy('token');
  assert.deepEqual({ direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider }, { direct: 1, provider: 1 }, 'one answer each way');
  assert.equal(byProvider.status, 200, byProvider.text);
  assert.equal(direct.status, 200, direct.text);
  assert.deepEqual(stable(direct.headers), stable(byProvider.headers));
  const [a, b] = [JSON.parse(byProvider.text), JSON.parse(direct.text)];
  assert.deepEqual(Object.keys(b), Object.keys(a), 'the same members in the same order');
  assert.deepEqual({ ...b, access_token: undefined }, { ...a, access_token: undefined });
  return { byProvider: a.access_token as string, direct: b.access_token as string, response: b };
}

describe('client credentials: the same token whoever issues it', () => {
  for (const mode of ['reference', 'jwt', 'stateless']) {
    test(`${mode} mode: the same response, the same claims, the same introspection and ledger entry`, async () => {
      const client = await newClient(mode, { grant_types: ['client_credentials'], response_types: [] });
      const { byProvider, direct, response } = await issueBothWays(client, { scope: 'api:read' });
      assert.equal(response.token_type, 'Bearer');
      assert.equal(response.scope, 'api:read');
      if (mode === 'reference') {
        assert.match(direct, /^[A-Za-z0-9_-]{43}$/);
      } else {
        assert.deepEqual(decodeProtectedHeader(direct), decodeProtectedHeader(byProvider));
        assert.deepEqual(shared(decodeJwt(direct)), shared(decodeJwt(byProvider)));
        assert.equal(decodeJwt(direct).sub, client.client_id);
      }
      // Introspected (by oidc-provider, so that only the issuing differs): active, and alike.
      const [a, b] = await Promise.all([byProvider, direct].map(async (token) => JSON.parse((await introspect({ token }, 'post')).text)));
      assert.equal(b.active, true);
      assert.deepEqual(shared(b), shared(a));
      const entries = await admin(server, 'GET', `/tokens?client_id=${client.client_id}`);
      const fields = (entry: Record<string, unknown>) => ({ ...entry, id: undefined, created_at: undefined, expires_at: undefined });
      if (mode === 'stateless') {
        assert.equal(entries.body.items.length, 0, 'stateless tokens have no entry');
      } else {
        assert.equal(entries.body.items.length, 2);
        assert.deepEqual(fields(entries.body.items[0]), fields(entries.body.items[1]));
        assert.equal(entries.body.items[0].format, mode);
      }
      // Revocable like any other.
      await clientCredentialsRevoke(client, direct);
      assert.equal(JSON.parse((await introspect({ token: direct }, 'post')).text).active, false);
    });
  }

  test('without a scope parameter, and with scopes outside what the resource server serves', async () => {
    const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read api:write' });
    const none = await issueBothWays(client);
    assert.equal(none.response.scope, undefined);
    const both = await issueBothWays(client, { scope: 'api:write api:read' });
    assert.equal(both.response.scope, 'api:write api:read');
  });
});

async function clientCredentialsRevoke(client: RegisteredClient, token: string) {
  const response = await fetch(`${server.url}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ token }),
  });
  assert.equal(response.status, 200);
}

describe('client credentials left to oidc-provider', () => {
  let client: RegisteredClient;
  before(async () => {
    client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
    assert.equal((await clientCredentials(client, 'basic')).status, 200, 'the secret is verified once');
  });

  async function passedOn(answer: Promise<Answer>): Promise<Answer> {
    const before = await answeredBy('token');
    const result = await answer;
    const afterwards = await answeredBy('token');
    assert.deepEqual({ direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider }, { direct: 0, provider: 1 });
    return result;
  }

  test('a scope the client may not have: 400 invalid_scope', async () => {
    const answer = await passedOn(clientCredentials(client, 'basic', { scope: 'api:admin' }));
    assert.equal(answer.status, 400);
    assert.equal(JSON.parse(answer.text).error, 'invalid_scope');
  });

  test('a malformed scope, a repeated grant_type: 400; an empty scope (oidc-provider reads it as absent): 200', async () => {
    assert.equal((await passedOn(clientCredentials(client, 'basic', { scope: 'api:read  api:read' }))).status, 400);
    assert.equal((await passedOn(clientCredentials(client, 'basic', { scope: '' }))).status, 200);
    const repeated = await passedOn(
      fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) }, body: 'grant_type=client_credentials&grant_type=client_credentials' }).then(async (r) => ({ status: r.status, text: await r.text(), headers: {} })),
    );
    assert.equal(repeated.status, 400);
  });

  test('a client without the grant type: 400; a wrong secret: 401', async () => {
    const web = await newClient('reference', { grant_types: ['authorization_code'] });
    assert.equal((await clientCredentials(web, 'post')).status, 400, 'verifies the secret once');
    const refused = await passedOn(clientCredentials(web, 'basic'));
    assert.equal(refused.status, 400);
    assert.deepEqual(JSON.parse(refused.text), { error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
    const wrong = await passedOn(clientCredentials({ ...client, client_secret: 'wrong' }, 'basic'));
    assert.equal(wrong.status, 401);
  });

  test('a deleted client gets no more tokens, though its secret was verified a moment before', async () => {
    const gone = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    assert.equal((await clientCredentials(gone, 'post')).status, 200);
    assert.equal((await clientCredentials(gone, 'basic')).status, 200);
    assert.equal((await admin(server, 'DELETE', `/clients/${gone.client_id}`)).status, 204);
    const refused = await passedOn(clientCredentials(gone, 'basic'));
    assert.equal(refused.status, 401);
  });

  test('a resource indicator is resolved by oidc-provider', async () => {
    const answer = await passedOn(clientCredentials(client, 'basic', { scope: 'api:read', resource: 'https://api.example.com/' }));
    assert.equal(answer.status, 200, answer.text);
  });

  test('a body passed on is read by oidc-provider as it would read it first-hand: empty, JSON-typed, large; no warning of a parser in front of it', async () => {
    const post = async (body: string, type = 'application/x-www-form-urlencoded') => {
      const before = await answeredBy('token');
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': type, authorization: basic(client) }, body });
      const answer = { status: response.status, text: await response.text() };
      const afterwards = await answeredBy('token');
      assert.deepEqual({ direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider }, { direct: 0, provider: 1 }, 'passed on');
      return answer;
    };
    const empty = await post('');
    assert.equal(empty.status, 400);
    assert.equal(JSON.parse(empty.text).error, 'invalid_request');
    const json = await post(JSON.stringify({ grant_type: 'client_credentials' }), 'application/json');
    assert.equal(json.status, 400, 'the token endpoint takes forms only');
    // Past a stream's default high-water mark (16 KiB), read back in several chunks.
    const large = await post(`grant_type=client_credentials&scope=api:read&${'x'.repeat(40_000)}=1`);
    assert.equal(large.status, 200, large.text);
    assert.ok(JSON.parse(large.text).access_token);
    assert.doesNotMatch(server.output(), /already parsed request body/);
  });
});
