import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK } from 'jose';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { query } from './helpers/db.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { countsOf, directProvider, SECRET, STORED_SECRET, type Counts } from './helpers/direct-provider.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { keyPair } from './helpers/key-pairs.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { DECLINE_REASONS, type DeclineReason } from '../src/oidc/direct-guards.ts';

// Introspection, the client credentials grant and the refresh token grant are answered by Tally
// directly when the request is one it covers (a client secret sent with HTTP Basic, stored as an HMAC;
// a reference token to introspect; a usable, unbound refresh token; no resource or authorization
// details), else by oidc-provider. The answers must not
// differ: every case below is asked both ways and compared. A request left to oidc-provider was
// declined by a named guard, counted on /metrics by reason: every reason is met below, most of them
// here, those only another configuration produces against an in-process provider
// (test/helpers/direct-provider.ts).

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
async function introspect(
  params: Record<string, string | string[]>,
  how: 'basic' | 'post' = 'basic',
  headers: Record<string, string> = {},
  client = resourceServer,
): Promise<Answer> {
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

type Endpoint = 'introspection' | 'token';

/** `endpoint:reason` of every decline seen counted below. */
const declined = new Set<string>();

async function answeredBy(endpoint: Endpoint = 'introspection'): Promise<Counts> {
  return countsOf(await (await fetch(`${server.url}/metrics`)).text(), endpoint);
}

/** What happened between two counts: answers each way, and the reasons of the declines (counted in `declined`). */
function since(before: Counts, afterwards: Counts, endpoint: Endpoint) {
  const reasons: Record<string, number> = {};
  for (const [reason, n] of Object.entries(afterwards.declines)) if (n !== (before.declines[reason] ?? 0)) reasons[reason] = n - (before.declines[reason] ?? 0);
  for (const reason of Object.keys(reasons)) declined.add(`${endpoint}:${reason}`);
  return { direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider, reasons };
}

/** Headers that describe the connection or the moment, not the answer. */
const VOLATILE = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
const stable = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).filter(([name]) => !VOLATILE.has(name)));

/** Asks oidc-provider (client_secret_post) and then Tally directly (Basic): the answers must be the same. */
async function bothWays(params: Record<string, string>, client = resourceServer): Promise<Record<string, unknown>> {
  const before = await answeredBy();
  const byProvider = await introspect(params, 'post', {}, client);
  const direct = await introspect(params, 'basic', {}, client);
  const afterwards = await answeredBy();
  // client_secret_post: client_id and client_secret are parameters a direct answer does not take.
  assert.deepEqual(since(before, afterwards, 'introspection'), { direct: 1, provider: 1, reasons: { unexpected_parameter: 1 } }, 'one answer each way');
  assert.equal(direct.status, 200);
  assert.equal(direct.text, byProvider.text, 'the same JSON, field for field and in the same order');
  assert.deepEqual(stable(direct.headers), stable(byProvider.headers));
  return JSON.parse(direct.text);
}

/** The request goes to oidc-provider, declined for `reason`; its answer is returned. */
async function byProvider(
  reason: DeclineReason,
  params: Record<string, string | string[]>,
  headers: Record<string, string> = {},
  client = resourceServer,
): Promise<Answer> {
  const before = await answeredBy();
  const answer = await introspect(params, 'basic', headers, client);
  const afterwards = await answeredBy();
  assert.deepEqual(since(before, afterwards, 'introspection'), { direct: 0, provider: 1, reasons: { [reason]: 1 } });
  return answer;
}

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  // It introspects other clients' tokens of the default audience (the issuer).
  resourceServer = await newClient('reference', {
    client_name: 'resource server',
    grant_types: ['client_credentials'],
    response_types: [],
    introspection_audiences: [server.url],
  });
  // The secret is an HMAC, compared in microseconds: answered directly from its first use.
  const before = await answeredBy();
  assert.equal((await introspect({ token: 'x'.repeat(43) })).status, 200);
  assert.deepEqual(since(before, await answeredBy(), 'introspection'), { direct: 1, provider: 0, reasons: {} });
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

    // A refresh token only to the client it was issued to, and marked as one.
    assert.deepEqual(await bothWays({ token: tokens.refresh_token! }), { active: false }, 'not to another client');
    const refresh = await bothWays({ token: tokens.refresh_token!, token_type_hint: 'refresh_token' }, client);
    assert.equal(refresh.active, true);
    assert.equal(refresh.token_type, 'refresh_token');
    assert.deepEqual(await bothWays({ token: tokens.refresh_token! }, client), refresh);
    assert.deepEqual(await bothWays({ token: tokens.access_token }, client), access);

    // Revoking the refresh token ends the grant: the access token goes with it.
    await oidc.tokenRevocation(config, tokens.refresh_token!);
    assert.deepEqual(await bothWays({ token: tokens.access_token }), { active: false });
    assert.deepEqual(await bothWays({ token: tokens.refresh_token! }, client), { active: false });
  });

  test("DPoP-bound reference tokens (a client's own, a user's): token_type DPoP, with their cnf", async () => {
    const client = await newClient('reference', { token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] });
    const config = await discover(server, client);
    const keyPair = await oidc.randomDPoPKeyPair();
    const DPoP = oidc.getDPoPHandle(config, keyPair);
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
    const confidential = await discover(server, await newClient('reference'));
    const { access_token } = await oidc.clientCredentialsGrant(confidential, { scope: 'api:read' }, { DPoP: oidc.getDPoPHandle(confidential, keyPair) });
    const own = await bothWays({ token: access_token });
    assert.equal(own.active, true);
    assert.equal(own.token_type, 'DPoP');
    assert.deepEqual(own.cnf, { jkt });

    // A user's token, from the code flow of a public client.
    const tokens = await codeFlow(config, await newUser(), undefined, undefined, undefined, { DPoP });
    const access = await bothWays({ token: tokens.access_token });
    assert.equal(access.token_type, 'DPoP');
    assert.deepEqual(access.cnf, { jkt });
    assert.deepEqual(await bothWays({ token: tokens.access_token, token_type_hint: 'refresh_token' }), access);
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

  test('a token neither reference nor JWT; a JWT of a key Tally does not have (the rest: test/direct-introspection-jwt.test.ts)', async () => {
    assert.equal((await byProvider('not_reference_token', { token: 'not-a-token' })).text, '{"active":false}');
    const { access_token } = await oidc.clientCredentialsGrant(await discover(server, await newClient('jwt')), { scope: 'api:read' });
    const [, payload, signature] = access_token.split('.');
    const unknownKid = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'not-ours' })).toString('base64url');
    assert.equal((await byProvider('jwt_undecided', { token: `${unknownKid}.${payload}.${signature}` })).text, '{"active":false}');
  });

  test('a wrong secret: 401 invalid_client, with nothing answered directly', async () => {
    const answer = await byProvider('secret_not_verified', { token }, {}, { ...resourceServer, client_secret: 'not-the-secret' });
    assert.equal(answer.status, 401);
    assert.equal(JSON.parse(answer.text).error, 'invalid_client');
  });

  test('a missing or repeated token parameter: 400 invalid_request', async () => {
    assert.equal((await byProvider('missing_token', {})).status, 400);
    assert.equal((await byProvider('missing_token', { token: '' })).status, 400);
    const repeated = await byProvider('repeated_parameter', { token: [token, token] });
    assert.equal(repeated.status, 400);
    assert.equal(JSON.parse(repeated.text).error, 'invalid_request');
  });

  test('client_id in the body besides Basic, a CORS request, a charset other than UTF-8, DPoP and attestation headers', async () => {
    assert.equal(JSON.parse((await byProvider('unexpected_parameter', { token, client_id: resourceServer.client_id })).text).active, true);
    // oidc-provider checks the origin against the client's redirect URIs (clientBasedCORS).
    const cors = await byProvider('cors', { token }, { origin: 'https://elsewhere.example' });
    assert.equal(cors.status, 400);
    assert.match(JSON.parse(cors.text).error_description, /origin .* not allowed/);
    assert.equal((await byProvider('content_type', { token }, { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' })).status, 200);
    assert.equal((await byProvider('content_type', { token }, { 'content-type': 'text/plain' })).status, 400);
    const dpop = await byProvider('dpop', { token }, { dpop: 'not-a-proof' });
    assert.equal(JSON.parse(dpop.text).active, true);
    const attestation = await byProvider('attestation', { token }, { 'oauth-client-attestation': 'not-an-attestation' });
    assert.deepEqual(JSON.parse(attestation.text), {
      error: 'invalid_request',
      error_description: 'client authentication must only be provided using one mechanism',
    });
  });

  test('HTTP Basic from a public client, or none at all: 401 or 400 from oidc-provider', async () => {
    const spa = await newClient('reference', { token_endpoint_auth_method: 'none' });
    const refused = await byProvider('client_auth_method', { token }, {}, { ...spa, client_secret: 'anything' });
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.text).error, 'invalid_client');
    const before = await answeredBy();
    const anonymous = await fetch(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    assert.equal(anonymous.status, 400);
    assert.deepEqual(since(before, await answeredBy(), 'introspection'), { direct: 0, provider: 1, reasons: { no_basic_credentials: 1 } });
  });

  test('a deleted client is refused at once, though its secret was verified a moment before', async () => {
    const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    assert.equal((await introspect({ token }, 'basic', {}, client)).status, 200);
    assert.equal((await admin(server, 'DELETE', `/clients/${client.client_id}`)).status, 204);
    const refused = await byProvider('unknown_client', { token }, {}, client);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.text).error, 'invalid_client');
  });

  test('after the secret is rotated, the old one is refused at once (by oidc-provider) and the new one answered directly', async () => {
    const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    assert.equal((await introspect({ token }, 'basic', {}, client)).status, 200);
    const rotated = await admin(server, 'POST', `/clients/${client.client_id}/secret`);
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal((await byProvider('secret_not_verified', { token }, {}, client)).status, 401);
    const before = await answeredBy();
    assert.equal((await introspect({ token }, 'basic', {}, { ...client, client_secret: rotated.body.client_secret })).status, 200);
    assert.deepEqual(since(before, await answeredBy(), 'introspection'), { direct: 1, provider: 0, reasons: {} });
  });
});

/** POST /token with client_credentials; `post` sends the credentials in the body. */
async function clientCredentials(
  client: RegisteredClient,
  how: 'basic' | 'post',
  params: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Answer> {
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

/**
 * One token from oidc-provider (client_secret_post) and one from Tally directly (Basic), compared;
 * `headers` are asked for each request (a DPoP proof is used once).
 */
async function issueBothWays(client: RegisteredClient, params: Record<string, string> = {}, headers: () => Record<string, string> = () => ({})) {
  const before = await answeredBy('token');
  const byProvider = await clientCredentials(client, 'post', params, headers());
  const direct = await clientCredentials(client, 'basic', params, headers());
  const afterwards = await answeredBy('token');
  assert.deepEqual(since(before, afterwards, 'token'), { direct: 1, provider: 1, reasons: { unexpected_parameter: 1 } }, 'one answer each way');
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

/** POST /token with grant_type refresh_token: `basic` is answered directly, `post` (client_secret_post) by oidc-provider. */
async function refresh(
  client: RegisteredClient,
  refreshToken: string,
  how: 'basic' | 'post',
  params: Record<string, string> = {},
  headers: Record<string, string> = {},
) {
  return clientCredentials(client, how, { grant_type: 'refresh_token', refresh_token: refreshToken, ...params }, headers);
}

/** A user's first tokens from a real code flow (openid-client), for `client`. */
async function firstTokens(client: RegisteredClient, scope?: string) {
  const tokens = await codeFlow(await discover(server, client), await newUser(), scope);
  assert.ok(tokens.refresh_token, 'a refresh token');
  return tokens;
}

/** The ledger entries of `client`'s tokens of `type`, but for what differs between any two: id, times and status. */
async function entriesOf(client: RegisteredClient, type: string) {
  const listed = await admin(server, 'GET', `/tokens?client_id=${client.client_id}&type=${type}`);
  assert.equal(listed.status, 200);
  return (listed.body.items as Record<string, unknown>[]).map(({ id, created_at, expires_at, status, redeemed_at, ...fields }) => fields);
}

describe('refresh: the same rotation and tokens whoever answers', () => {
  for (const mode of ['reference', 'jwt', 'stateless']) {
    test(`${mode} mode: the same response, ID token, access token claims, introspection and ledger entries; the used token is a replay either way`, async () => {
      const client = await newClient(mode);
      const first = await firstTokens(client);
      // One rotation by oidc-provider, the next directly: each takes the token the other gave.
      const before = await answeredBy('token');
      const byProviderAnswer = await refresh(client, first.refresh_token!, 'post');
      assert.equal(byProviderAnswer.status, 200, byProviderAnswer.text);
      const a = JSON.parse(byProviderAnswer.text);
      // Introspected (by oidc-provider, so that only the issuing differs) before the direct answer uses it.
      const introspected = async (token: string) => JSON.parse((await introspect({ token }, 'post', {}, client)).text);
      const aRefresh = await introspected(a.refresh_token);
      const directAnswer = await refresh(client, a.refresh_token, 'basic');
      assert.equal(directAnswer.status, 200, directAnswer.text);
      const b = JSON.parse(directAnswer.text);
      assert.deepEqual(
        since(before, await answeredBy('token'), 'token'),
        { direct: 1, provider: 1, reasons: { unexpected_parameter: 1 } },
        'one answer each way',
      );
      assert.deepEqual(stable(directAnswer.headers), stable(byProviderAnswer.headers));
      assert.deepEqual(Object.keys(b), Object.keys(a), 'the same members in the same order');
      assert.deepEqual(Object.keys(b), ['access_token', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type']);
      const tokens = new Set(['access_token', 'id_token', 'refresh_token']);
      const rest = (body: Record<string, unknown>) => Object.fromEntries(Object.entries(body).filter(([name]) => !tokens.has(name)));
      assert.deepEqual(rest(b), rest(a));
      assert.notEqual(b.refresh_token, a.refresh_token);

      // The ID tokens: the same header and claims but their times.
      assert.deepEqual(decodeProtectedHeader(b.id_token), decodeProtectedHeader(a.id_token));
      assert.deepEqual(shared(decodeJwt(b.id_token)), shared(decodeJwt(a.id_token)));
      assert.equal(decodeJwt(b.id_token).sub, decodeJwt(first.id_token!).sub);
      if (mode !== 'reference') {
        assert.deepEqual(decodeProtectedHeader(b.access_token), decodeProtectedHeader(a.access_token));
        assert.deepEqual(shared(decodeJwt(b.access_token)), shared(decodeJwt(a.access_token)));
      }
      // Both access tokens active and alike; the refresh tokens alike, each while it was the one to use.
      const [aAccess, bAccess, bRefresh] = [await introspected(a.access_token), await introspected(b.access_token), await introspected(b.refresh_token)];
      assert.equal(bAccess.active, true);
      assert.deepEqual(shared(bAccess), shared(aAccess));
      assert.equal(bRefresh.active, true);
      assert.deepEqual(shared(bRefresh), shared(aRefresh));
      assert.equal((await introspected(a.refresh_token)).active, false, 'used');
      if (mode !== 'stateless') {
        // Three of each (from the code, oidc-provider's rotation and the direct one), alike.
        for (const type of ['access_token', 'refresh_token']) {
          const entries = await entriesOf(client, type);
          assert.equal(entries.length, 3, type);
          for (const entry of entries) assert.deepEqual(entry, entries[0], type);
        }
      }

      // The token used directly, used again: oidc-provider's replay rule (the grant revoked, with its tokens).
      const replay = await refresh(client, a.refresh_token, 'basic');
      assert.equal(replay.status, 400);
      assert.equal(JSON.parse(replay.text).error, 'invalid_grant');
      for (const token of [b.access_token, b.refresh_token]) assert.equal(JSON.parse((await introspect({ token }, 'post', {}, client)).text).active, false);
    });
  }

  test('openid-client refreshes directly along a chain; without openid in the scope, no ID token', async () => {
    const client = await newClient('jwt');
    const config = await discover(server, client);
    let refreshToken = (await firstTokens(client)).refresh_token!;
    const before = await answeredBy('token');
    for (let i = 0; i < 3; i++) {
      const tokens = await oidc.refreshTokenGrant(config, refreshToken);
      assert.ok(tokens.id_token && tokens.access_token && tokens.refresh_token);
      assert.equal(tokens.claims()?.sub, decodeJwt(tokens.access_token).sub);
      refreshToken = tokens.refresh_token;
    }
    assert.deepEqual(since(before, await answeredBy('token'), 'token'), { direct: 3, provider: 0, reasons: {} });

    const plain = await firstTokens(client, 'offline_access api:read');
    const byProviderAnswer = await refresh(client, plain.refresh_token!, 'post');
    assert.equal(byProviderAnswer.status, 200, byProviderAnswer.text);
    const direct = await refresh(client, JSON.parse(byProviderAnswer.text).refresh_token, 'basic');
    assert.equal(direct.status, 200, direct.text);
    assert.deepEqual(Object.keys(JSON.parse(direct.text)), Object.keys(JSON.parse(byProviderAnswer.text)));
    assert.equal(JSON.parse(direct.text).id_token, undefined);
  });

  test('one token used four times at once (no reuse leeway): one rotation answers, the others are invalid_grant', async () => {
    const client = await newClient('reference');
    const first = await firstTokens(client);
    const answers = await Promise.all(Array.from({ length: 4 }, () => refresh(client, first.refresh_token!, 'basic')));
    assert.equal(answers.filter((answer) => answer.status === 200).length, 1, answers.map((answer) => answer.text).join('\n'));
    for (const answer of answers) if (answer.status !== 200) assert.equal(JSON.parse(answer.text).error, 'invalid_grant');
  });
});

describe('refresh left to oidc-provider', () => {
  let client: RegisteredClient;
  before(async () => {
    client = await newClient('reference');
  });

  async function passedOnRefresh(reason: DeclineReason, refreshToken: string, params: Record<string, string> = {}, headers: Record<string, string> = {}) {
    const before = await answeredBy('token');
    const answer = await refresh(client, refreshToken, 'basic', params, headers);
    assert.deepEqual(since(before, await answeredBy('token'), 'token'), { direct: 0, provider: 1, reasons: { [reason]: 1 } });
    return answer;
  }

  test('an unknown token, and one used beyond the leeway: 400 invalid_grant; the reuse revokes the grant', async () => {
    const unknown = await passedOnRefresh('token_unusable', 'x'.repeat(43));
    assert.equal(unknown.status, 400);
    assert.equal(JSON.parse(unknown.text).error, 'invalid_grant');
    const first = await firstTokens(client);
    const rotated = JSON.parse((await refresh(client, first.refresh_token!, 'basic')).text);
    assert.ok(rotated.refresh_token);
    const reused = await passedOnRefresh('token_unusable', first.refresh_token!);
    assert.equal(reused.status, 400);
    assert.equal(JSON.parse((await introspect({ token: rotated.refresh_token }, 'post', {}, client)).text).active, false, 'the grant is revoked');
  });

  test("another client's token: 400 invalid_grant", async () => {
    const other = await newClient('reference');
    const theirs = await firstTokens(other);
    const answer = await passedOnRefresh('token_unusable', theirs.refresh_token!);
    assert.equal(answer.status, 400);
    assert.equal(JSON.parse(answer.text).error, 'invalid_grant');
    // Still the other client's to use.
    assert.equal((await refresh(other, theirs.refresh_token!, 'basic')).status, 200);
  });

  test('a scope parameter (narrowing), a missing refresh_token, a DPoP proof', async () => {
    const first = await firstTokens(client);
    const narrowed = await passedOnRefresh('unexpected_parameter', first.refresh_token!, { scope: 'openid' });
    assert.equal(narrowed.status, 200, narrowed.text);
    assert.equal(JSON.parse(narrowed.text).scope, 'openid');
    const before = await answeredBy('token');
    const missing = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
      body: 'grant_type=refresh_token',
    });
    assert.equal(missing.status, 400);
    assert.deepEqual(since(before, await answeredBy('token'), 'token'), { direct: 0, provider: 1, reasons: { missing_token: 1 } });
    const next = JSON.parse(narrowed.text).refresh_token;
    const key = proofKey();
    const bound = await passedOnRefresh('dpop', next, {}, { dpop: proof(key, { htu: `${server.url}/token` }) });
    assert.equal(bound.status, 200, bound.text);
    assert.equal(JSON.parse(bound.text).token_type, 'DPoP');
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
    assert.equal((await clientCredentials(client, 'basic')).status, 200);
  });

  async function passedOn(reason: DeclineReason, answer: () => Promise<Answer>): Promise<Answer> {
    const before = await answeredBy('token');
    const result = await answer();
    const afterwards = await answeredBy('token');
    assert.deepEqual(since(before, afterwards, 'token'), { direct: 0, provider: 1, reasons: { [reason]: 1 } });
    return result;
  }

  test('a scope the client may not have: 400 invalid_scope', async () => {
    const answer = await passedOn('scope_not_allowed', () => clientCredentials(client, 'basic', { scope: 'api:admin' }));
    assert.equal(answer.status, 400);
    assert.equal(JSON.parse(answer.text).error, 'invalid_scope');
  });

  test('a malformed scope, a repeated grant_type: 400; an empty scope (oidc-provider reads it as absent): 200', async () => {
    assert.equal((await passedOn('scope_syntax', () => clientCredentials(client, 'basic', { scope: 'api:read  api:read' }))).status, 400);
    assert.equal((await passedOn('scope_syntax', () => clientCredentials(client, 'basic', { scope: '' }))).status, 200);
    const repeated = await passedOn('repeated_parameter', () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
        body: 'grant_type=client_credentials&grant_type=client_credentials',
      }).then(async (r) => ({ status: r.status, text: await r.text(), headers: {} })),
    );
    assert.equal(repeated.status, 400);
  });

  test('a client without the grant type: 400; a wrong secret: 401', async () => {
    const web = await newClient('reference', { grant_types: ['authorization_code'] });
    assert.equal((await clientCredentials(web, 'post')).status, 400);
    const refused = await passedOn('grant_type_not_allowed', () => clientCredentials(web, 'basic'));
    assert.equal(refused.status, 400);
    assert.deepEqual(JSON.parse(refused.text), { error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
    const wrong = await passedOn('secret_not_verified', () => clientCredentials({ ...client, client_secret: 'wrong' }, 'basic'));
    assert.equal(wrong.status, 401);
  });

  test('a client refused for too many wrong secrets from this address: 429 invalid_client from oidc-provider, the right secret too', async () => {
    const guessed = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
    for (let i = 0; i < 10; i++) await passedOn('secret_not_verified', () => clientCredentials({ ...guessed, client_secret: `wrong-${i}` }, 'basic'));
    const refused = await passedOn('client_throttled', () => clientCredentials(guessed, 'basic'));
    assert.equal(refused.status, 429);
    assert.equal(JSON.parse(refused.text).error, 'invalid_client');
  });

  test('a grant type this client may not use (refresh_token): 400 from oidc-provider', async () => {
    const answer = await passedOn('grant_type_not_allowed', () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
        body: 'grant_type=refresh_token&refresh_token=unknown',
      }).then(async (r) => ({ status: r.status, text: await r.text(), headers: {} })),
    );
    assert.deepEqual(JSON.parse(answer.text), { error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
  });

  test('a deleted client gets no more tokens, though its secret was verified a moment before', async () => {
    const gone = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    assert.equal((await clientCredentials(gone, 'post')).status, 200);
    assert.equal((await clientCredentials(gone, 'basic')).status, 200);
    assert.equal((await admin(server, 'DELETE', `/clients/${gone.client_id}`)).status, 204);
    const refused = await passedOn('unknown_client', () => clientCredentials(gone, 'basic'));
    assert.equal(refused.status, 401);
  });

  test("a client's changed metadata counts at once: the Client found for the direct answer is built from it", async () => {
    const changing = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
    for (let i = 0; i < 2; i++) assert.equal((await clientCredentials(changing, 'basic')).status, 200);
    const narrowed = await admin(server, 'PATCH', `/clients/${changing.client_id}`, { scope: 'openid' });
    assert.equal(narrowed.status, 200);
    const outside = await passedOn('scope_not_allowed', () => clientCredentials(changing, 'basic', { scope: 'api:read' }));
    assert.equal(JSON.parse(outside.text).error, 'invalid_scope');
    assert.equal((await admin(server, 'PATCH', `/clients/${changing.client_id}`, { grant_types: ['authorization_code'] })).status, 200);
    const refused = await passedOn('grant_type_not_allowed', () => clientCredentials(changing, 'basic'));
    assert.equal(refused.status, 400);
  });

  test('a resource indicator is resolved by oidc-provider', async () => {
    const answer = await passedOn('unexpected_parameter', () =>
      clientCredentials(client, 'basic', { scope: 'api:read', resource: 'https://api.example.com/' }),
    );
    assert.equal(answer.status, 200, answer.text);
  });

  test('a body passed on is read by oidc-provider as it would read it first-hand: empty, JSON-typed, large; no warning of a parser in front of it', async () => {
    const post = (reason: DeclineReason, body: string, type = 'application/x-www-form-urlencoded') =>
      passedOn(reason, async () => {
        const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': type, authorization: basic(client) }, body });
        return { status: response.status, text: await response.text(), headers: {} };
      });
    const empty = await post('other_grant_type', '');
    assert.equal(empty.status, 400);
    assert.equal(JSON.parse(empty.text).error, 'invalid_request');
    const json = await post('content_type', JSON.stringify({ grant_type: 'client_credentials' }), 'application/json');
    assert.equal(json.status, 400, 'the token endpoint takes forms only');
    // Past a stream's default high-water mark (16 KiB), read back in several chunks.
    const large = await post('unexpected_parameter', `grant_type=client_credentials&scope=api:read&${'x'.repeat(40_000)}=1`);
    assert.equal(large.status, 200, large.text);
    assert.ok(JSON.parse(large.text).access_token);
    assert.doesNotMatch(server.output(), /already parsed request body/);
  });
});

/** A DPoP key pair (node:crypto) and its proofs, each part of which a test may spoil. */
interface ProofKey {
  privateKey: KeyObject;
  alg: 'ES256' | 'Ed25519';
  jwk: Record<string, string>;
  thumbprint: string;
}

function proofKey(alg: 'ES256' | 'Ed25519' = 'ES256'): ProofKey {
  const { privateKey, publicJwk } = keyPair({ type: alg === 'ES256' ? 'ec' : 'ed25519' });
  const { kty, crv, x, y } = publicJwk as Record<string, string>;
  const jwk: Record<string, string> = kty === 'EC' ? { kty: kty!, crv: crv!, x: x!, y: y! } : { kty: kty!, crv: crv!, x: x! };
  const canonical = kty === 'EC' ? { crv, kty, x, y } : { crv, kty, x };
  return { privateKey, alg, jwk, thumbprint: createHash('sha256').update(JSON.stringify(canonical)).digest('base64url') };
}

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** A proof for POST /token, as a client makes it; `header` and `claims` add to (or, with undefined, take from) its members. */
function proof(key: ProofKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, spoil?: (signature: Buffer) => Buffer): string {
  const input = `${b64(JSON.stringify({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk, ...header }))}.${b64(
    JSON.stringify({ htm: 'POST', htu: `${server.url}/token`, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims }),
  )}`;
  const signature = sign(key.alg === 'ES256' ? 'sha256' : null, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64(spoil ? spoil(signature) : signature)}`;
}

describe('client credentials with DPoP: the same bound token whoever issues it', () => {
  for (const mode of ['reference', 'jwt', 'stateless']) {
    test(`${mode} mode: the same response (token_type DPoP), the same claims with cnf.jkt, the same introspection and ledger entry`, async () => {
      const client = await newClient(mode, { grant_types: ['client_credentials'], response_types: [] });
      const key = proofKey();
      const { byProvider, direct, response } = await issueBothWays(client, { scope: 'api:read' }, () => ({ dpop: proof(key) }));
      assert.equal(response.token_type, 'DPoP');
      if (mode !== 'reference') {
        assert.deepEqual(decodeProtectedHeader(direct), decodeProtectedHeader(byProvider));
        assert.deepEqual(shared(decodeJwt(direct)), shared(decodeJwt(byProvider)));
        assert.deepEqual(decodeJwt(direct).cnf, { jkt: key.thumbprint });
      }
      const [a, b] = await Promise.all([byProvider, direct].map(async (token) => JSON.parse((await introspect({ token }, 'post')).text)));
      assert.equal(b.active, true);
      assert.equal(b.token_type, 'DPoP');
      assert.deepEqual(b.cnf, { jkt: key.thumbprint });
      assert.deepEqual(shared(b), shared(a));
      const entries = await admin(server, 'GET', `/tokens?client_id=${client.client_id}`);
      if (mode !== 'stateless') {
        const fields = (entry: Record<string, unknown>) => ({ ...entry, id: undefined, created_at: undefined, expires_at: undefined });
        assert.equal(entries.body.items.length, 2);
        assert.deepEqual(fields(entries.body.items[0]), fields(entries.body.items[1]));
        assert.deepEqual(entries.body.items[0].cnf, { jkt: key.thumbprint });
      }
    });
  }

  test('an Ed25519 key (alg Ed25519 and EdDSA), and a client that must use DPoP: the same answers', async () => {
    const client = await newClient('jwt', { grant_types: ['client_credentials'], response_types: [], dpop_bound_access_tokens: true });
    const key = proofKey('Ed25519');
    const eddsa = await issueBothWays(client, { scope: 'api:read' }, () => ({ dpop: proof(key) }));
    assert.deepEqual(decodeJwt(eddsa.direct).cnf, { jkt: key.thumbprint });
    const legacy = await issueBothWays(client, { scope: 'api:read' }, () => ({ dpop: proof(key, {}, { alg: 'EdDSA' }) }));
    assert.deepEqual(decodeJwt(legacy.direct).cnf, { jkt: key.thumbprint });
    assert.equal(legacy.response.token_type, 'DPoP');
  });

  test('openid-client as the client (its own proofs): answered directly, a DPoP token', async () => {
    const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [] });
    const config = await discover(server, client);
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
    const before = await answeredBy('token');
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'api:read' }, { DPoP });
    assert.equal(tokens.token_type, 'dpop');
    assert.deepEqual(since(before, await answeredBy('token'), 'token'), { direct: 1, provider: 0, reasons: {} });
  });
});

describe('client credentials with DPoP left to oidc-provider: refused (or answered) as it refuses them', () => {
  let client: RegisteredClient;
  let key: ProofKey;
  before(async () => {
    client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
    key = proofKey();
    assert.equal((await clientCredentials(client, 'basic', {}, { dpop: proof(key) })).status, 200);
  });

  /** Declined for `reason` (counted once), oidc-provider's answer is returned. */
  async function passedOn(reason: DeclineReason, headers: Record<string, string>, who = client): Promise<{ status: number; body: Record<string, unknown> }> {
    const before = await answeredBy('token');
    const answer = await clientCredentials(who, 'basic', {}, headers);
    assert.deepEqual(since(before, await answeredBy('token'), 'token'), { direct: 0, provider: 1, reasons: { [reason]: 1 } });
    return { status: answer.status, body: JSON.parse(answer.text) };
  }

  const invalidProof = (description: string | RegExp) => (answer: { status: number; body: Record<string, unknown> }) => {
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.error, 'invalid_dpop_proof');
    assert.match(answer.body.error_description as string, description instanceof RegExp ? description : new RegExp(description));
  };

  test('a wrong htm, htu, an old or future iat, no jti, a bad signature, a private jwk: 400 invalid_dpop_proof', async () => {
    invalidProof('htm mismatch')(await passedOn('dpop_invalid', { dpop: proof(key, { htm: 'GET' }) }));
    invalidProof('htu mismatch')(await passedOn('dpop_invalid', { dpop: proof(key, { htu: `${server.url}/token/introspection` }) }));
    invalidProof('htu mismatch')(await passedOn('dpop_invalid', { dpop: proof(key, { htu: 'https://elsewhere.example/token' }) }));
    invalidProof('iat is not recent enough')(await passedOn('dpop_invalid', { dpop: proof(key, { iat: Math.floor(Date.now() / 1000) - 301 }) }));
    invalidProof('iat is not recent enough')(await passedOn('dpop_invalid', { dpop: proof(key, { iat: Math.floor(Date.now() / 1000) + 400 }) }));
    invalidProof('jti string')(await passedOn('dpop_invalid', { dpop: proof(key, { jti: undefined }) }));
    const flipped = (signature: Buffer) => Buffer.from(signature.map((byte, i) => (i === 10 ? byte ^ 1 : byte)));
    invalidProof('invalid DPoP key binding')(await passedOn('dpop_invalid', { dpop: proof(key, {}, {}, flipped) }));
    const other = proofKey();
    invalidProof('invalid DPoP key binding')(await passedOn('dpop_invalid', { dpop: proof(key, {}, { jwk: other.jwk }) }));
    const { d } = key.privateKey.export({ format: 'jwk' }) as { d: string };
    invalidProof('invalid DPoP key binding')(await passedOn('dpop_invalid', { dpop: proof(key, {}, { jwk: { ...key.jwk, d } }) }));
    // A query or fragment in htu is dropped before the comparison, here as there.
    const answer = await clientCredentials(client, 'basic', {}, { dpop: proof(key, { htu: `${server.url}/token?x=1#y` }) });
    assert.equal(JSON.parse(answer.text).token_type, 'DPoP');
  });

  test('a replayed proof: 400 invalid_grant, on either path whichever used it first', async () => {
    const replayed = (answer: { status: number; body: Record<string, unknown> }) =>
      assert.deepEqual(answer, { status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
    // Used directly, then again directly (declined: oidc-provider finds the mark) and through oidc-provider.
    const once = proof(key);
    assert.equal((await clientCredentials(client, 'basic', {}, { dpop: once })).status, 200);
    replayed(await passedOn('dpop_replayed', { dpop: once }));
    const viaProvider = await clientCredentials(client, 'post', {}, { dpop: once });
    replayed({ status: viaProvider.status, body: JSON.parse(viaProvider.text) });
    // Used by oidc-provider first, then refused directly.
    const first = proof(key);
    assert.equal((await clientCredentials(client, 'post', {}, { dpop: first })).status, 200);
    replayed(await passedOn('dpop_replayed', { dpop: first }));
  });

  test("a proof's replay mark is led by its own iat on either path, so that marks are written in time order (one-time-marks.ts)", async () => {
    const markOf = async (clientId: string, value: string) => {
      const { iat, jti } = decodeJwt(value) as { iat: number; jti: string };
      const expected = `${String(iat).padStart(12, '0')}.${createHash('sha256').update(`${clientId}${jti}`).digest('base64url')}`;
      return (await query<{ key: string }>(server, 'SELECT "key" FROM "replay_marks" WHERE "key" = ?', expected)).length;
    };
    // Signed a minute ago and two minutes ago (inside the window): the key follows the proof, not the clock.
    const direct = proof(key, { iat: Math.floor(Date.now() / 1000) - 60 });
    const counted = await answeredBy('token');
    assert.equal((await clientCredentials(client, 'basic', {}, { dpop: direct })).status, 200);
    assert.equal(since(counted, await answeredBy('token'), 'token').direct, 1, 'answered directly');
    assert.equal(await markOf(client.client_id, direct), 1, 'the direct answer marks the proof under its iat');
    const viaProvider = proof(key, { iat: Math.floor(Date.now() / 1000) - 120 });
    assert.equal((await clientCredentials(client, 'post', {}, { dpop: viaProvider })).status, 200);
    assert.equal(await markOf(client.client_id, viaProvider), 1, "oidc-provider's check marks it under its iat, read from the request");
    // Either way the replay still finds the mark (one key per proof).
    assert.equal((await clientCredentials(client, 'post', {}, { dpop: direct })).status, 400);
    assert.equal((await passedOn('dpop_replayed', { dpop: viaProvider })).status, 400);
  });

  test('a nonce claim (no nonces configured): 400; an unusual proof (a kid, an empty header, another typ spelling, exp): oidc-provider judges it', async () => {
    invalidProof('nonces are not supported')(await passedOn('dpop_nonce', { dpop: proof(key, { nonce: 'abc' }) }));
    const kid = await passedOn('dpop_unusual', { dpop: proof(key, {}, { kid: 'k1' }) });
    assert.equal(kid.body.token_type, 'DPoP');
    const typ = await passedOn('dpop_unusual', { dpop: proof(key, {}, { typ: 'application/dpop+jwt' }) });
    assert.equal(typ.body.token_type, 'DPoP');
    const exp = await passedOn('dpop_unusual', { dpop: proof(key, { exp: Math.floor(Date.now() / 1000) + 60 }) });
    assert.equal(exp.body.token_type, 'DPoP');
    const alg = await passedOn('dpop_unusual', { dpop: proof(key, {}, { alg: 'ES384' }) });
    invalidProof('invalid DPoP key binding')(alg);
    // An empty DPoP header is no proof to oidc-provider: a Bearer token.
    const empty = await passedOn('dpop_unusual', { dpop: '' });
    assert.equal(empty.body.token_type, 'Bearer');
    invalidProof('invalid DPoP key binding')(await passedOn('dpop_invalid', { dpop: 'not-a-proof' }));
  });

  test('a client that must use DPoP, without a proof: 400 invalid_grant from oidc-provider', async () => {
    const bound = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], dpop_bound_access_tokens: true });
    const answer = await passedOn('sender_constrained', {}, bound);
    assert.deepEqual(answer, { status: 400, body: { error: 'invalid_grant', error_description: 'grant request is invalid' } });
  });
});

describe('declines that only another configuration produces (an in-process oidc-provider, Tally in front)', () => {
  const clients = async () => {
    const client = async (client_id: string, extra: Record<string, unknown> = {}) => ({
      client_id,
      client_secret: STORED_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      ...extra,
    });
    return Promise.all([
      client('plain'),
      client('plaintext', { client_secret: SECRET }),
      client('expired', { client_secret_expires_at: 1 }),
      client('bound', { dpop_bound_access_tokens: true }),
      client('fragment'),
      client('failing'),
    ]);
  };

  /** Asks directly: declined for `reason`, counted once on the in-process metrics. */
  async function declines(
    direct: ReturnType<typeof directProvider>,
    endpoint: Endpoint,
    reason: DeclineReason,
    form: Record<string, string>,
    clientId: string,
  ) {
    const before = await direct.counts(endpoint);
    assert.equal(await direct.ask(endpoint, form, clientId), undefined, `${reason}: left to oidc-provider`);
    assert.deepEqual(since(before, await direct.counts(endpoint), endpoint), { direct: 0, provider: 1, reasons: { [reason]: 1 } });
  }

  test('another client secret, an expired one, a client bound to DPoP, an odd default resource, a failing resource server, tokens with details or a key', async () => {
    const direct = directProvider({
      clients: await clients(),
      scopes: ['api:read'],
      features: {
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: (_ctx, client) => (client?.clientId === 'fragment' ? 'https://api.example.com/#part' : 'https://api.example.com/'),
          getResourceServerInfo: (_ctx, resource, client) =>
            client.clientId === 'failing' ? ({} as never) : { scope: 'api:read', audience: resource, accessTokenFormat: 'opaque' },
          useGrantedResource: () => true,
        },
      },
    });
    const grant = { grant_type: 'client_credentials', scope: 'api:read' };

    // The harness answers directly what Tally would: a token, then its introspection.
    const before = await direct.counts('token');
    const issued = await direct.ask('token', grant, 'plain');
    assert.equal(issued?.status, 200);
    const { access_token } = issued!.body as { access_token: string };
    assert.deepEqual(since(before, await direct.counts('token'), 'token'), { direct: 1, provider: 0, reasons: {} });
    assert.equal(((await direct.ask('introspection', { token: access_token }, 'plain'))?.body as { active: boolean } | undefined)?.active, true);

    await declines(direct, 'token', 'secret_not_keyed', grant, 'plaintext');
    await declines(direct, 'introspection', 'secret_expired', { token: access_token }, 'expired');
    await declines(direct, 'token', 'sender_constrained', grant, 'bound');
    await declines(direct, 'token', 'default_resource', grant, 'fragment');
    await declines(direct, 'token', 'failed', grant, 'failing');
    assert.equal(direct.warnings.length, 1, 'a failed direct answer is logged');

    const Client = direct.provider.Client as unknown as { find(id: string): Promise<object> };
    const ClientCredentials = direct.provider.ClientCredentials as unknown as new (fields: object) => { save(): Promise<string> };
    const client = await Client.find('plain');
    const detailed = await new ClientCredentials({ client, scope: 'api:read', rar: [{ type: 'payment_initiation' }] }).save();
    await declines(direct, 'introspection', 'authorization_details', { token: detailed }, 'plain');
    // A bound token's answer (token_type DPoP, cnf) is written directly, as oidc-provider writes it.
    const bound = await new ClientCredentials({ client, scope: 'api:read', jkt: 'x'.repeat(43), 'x5t#S256': 'y'.repeat(43) }).save();
    const answer = (await direct.ask('introspection', { token: bound }, 'plain'))?.body as Record<string, unknown> | undefined;
    assert.equal(answer?.token_type, 'DPoP');
    assert.deepEqual(answer?.cnf, { 'x5t#S256': 'y'.repeat(43), jkt: 'x'.repeat(43) });
  });

  test('refresh: a token without one granted resource, one whose resource server fails, a bound one, one with details; a failure after the token was used is a 500', async () => {
    let claimsFail = false;
    const direct = directProvider({
      clients: [
        {
          client_id: 'web',
          client_secret: STORED_SECRET,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: ['https://rp.example.com/cb'],
        },
      ],
      // offline_access: oidc-provider then serves the refresh token grant.
      scopes: ['openid', 'offline_access', 'api:read'],
      rotateRefreshToken: true,
      findAccount: (_ctx, accountId) => ({
        accountId,
        claims: () => {
          if (claimsFail) throw new Error('the account store failed');
          return { sub: accountId };
        },
      }),
      features: {
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'https://api.example.com/',
          getResourceServerInfo: (_ctx, resource) =>
            resource === 'https://failing.example.com/' ? ({} as never) : { scope: 'api:read', audience: resource, accessTokenFormat: 'opaque' },
          useGrantedResource: () => true,
        },
      },
    });
    type Saved = { save(): Promise<string> };
    const models = direct.provider as unknown as {
      Client: { find(id: string): Promise<object> };
      Grant: new (fields: object) => Saved & { addOIDCScope(scope: string): void; addResourceScope(resource: string, scope: string): void };
      RefreshToken: (new (fields: object) => Saved) & { find(value: string, options: object): Promise<{ consumed?: number } | undefined> };
    };
    const client = await models.Client.find('web');
    const grant = new models.Grant({ accountId: 'someone', clientId: 'web' });
    grant.addOIDCScope('openid');
    for (const resource of ['https://api.example.com/', 'https://failing.example.com/']) grant.addResourceScope(resource, 'api:read');
    const grantId = await grant.save();
    const issue = (fields: object = {}) =>
      new models.RefreshToken({
        accountId: 'someone',
        client,
        grantId,
        gty: 'authorization_code',
        scope: 'openid api:read',
        resource: 'https://api.example.com/',
        ...fields,
      }).save();
    const form = async (fields?: object) => ({ grant_type: 'refresh_token', refresh_token: await issue(fields) });

    const answered = await direct.ask('token', await form(), 'web');
    assert.equal(answered?.status, 200);
    assert.deepEqual(Object.keys(answered!.body), ['access_token', 'expires_in', 'id_token', 'refresh_token', 'scope', 'token_type']);
    await declines(direct, 'token', 'granted_resource', await form({ resource: undefined }), 'web');
    await declines(direct, 'token', 'granted_resource', await form({ resource: 'https://failing.example.com/' }), 'web');
    await declines(direct, 'token', 'sender_constrained', await form({ jkt: 'x'.repeat(43) }), 'web');
    await declines(direct, 'token', 'authorization_details', await form({ rar: [{ type: 'payment_initiation' }] }), 'web');

    // Once the token is used, a failure is answered, not handed to oidc-provider (which would take the used token for a replay).
    claimsFail = true;
    const used = await issue();
    const before = await direct.counts('token');
    const failed = await direct.ask('token', { grant_type: 'refresh_token', refresh_token: used }, 'web');
    assert.equal(failed?.status, 500);
    assert.deepEqual(failed?.body, { error: 'server_error', error_description: 'oops! something went wrong' });
    assert.deepEqual(since(before, await direct.counts('token'), 'token'), { direct: 1, provider: 0, reasons: {} });
    assert.ok((await models.RefreshToken.find(used, { ignoreExpiration: true }))?.consumed, 'the token was used');
    assert.equal(direct.errors.length, 1, 'and the failure logged');
  });

  test('DPoP server nonces configured (DPOP_NONCES): a request with a proof is declined, one without answered', async () => {
    const direct = directProvider({
      clients: await clients(),
      scopes: ['api:read'],
      features: {
        clientCredentials: { enabled: true },
        dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'https://api.example.com/',
          getResourceServerInfo: (_ctx, resource) => ({ scope: 'api:read', audience: resource, accessTokenFormat: 'opaque' }),
          useGrantedResource: () => true,
        },
      },
    });
    const grant = { grant_type: 'client_credentials' };
    const before = await direct.counts('token');
    assert.equal((await direct.ask('token', grant, 'plain'))?.status, 200);
    assert.deepEqual(since(before, await direct.counts('token'), 'token'), { direct: 1, provider: 0, reasons: {} });
    const again = await direct.counts('token');
    const key = proofKey();
    assert.equal(await direct.ask('token', grant, 'plain', { dpop: proof(key, { htu: 'http://localhost:3000/token' }) }), undefined);
    assert.deepEqual(since(again, await direct.counts('token'), 'token'), { direct: 0, provider: 1, reasons: { dpop: 1 } });
  });

  test('a configuration the direct answers do not reproduce: every request declined', async () => {
    const direct = directProvider({ clients: await clients(), features: { introspection: { enabled: false }, clientCredentials: { enabled: false } } });
    await declines(direct, 'token', 'configuration', { grant_type: 'client_credentials' }, 'plain');
    await declines(direct, 'introspection', 'configuration', { token: 'x'.repeat(43) }, 'plain');
  });
});

test("the form endpoints' answers carry the security headers once, with the machine policy: direct, declined, refused", async () => {
  const client = await newClient('reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
  // The headers every oidc-provider answer carries (discovery), but its page policy.
  const discovery = await fetch(`${server.url}/.well-known/openid-configuration`);
  const expected = Object.fromEntries(
    [...discovery.headers].filter(
      ([name]) =>
        name.startsWith('x-') || name.startsWith('cross-origin') || ['referrer-policy', 'origin-agent-cluster', 'strict-transport-security'].includes(name),
    ),
  );
  assert.ok(Object.keys(expected).length >= 5, JSON.stringify(expected));
  const before = await answeredBy('token');
  const answers: [string, Answer][] = [
    ['direct', await clientCredentials(client, 'basic')],
    ['declined (a wrong secret)', await clientCredentials({ ...client, client_secret: 'wrong' }, 'basic')],
    ['declined (client_secret_post)', await clientCredentials(client, 'post')],
    ['introspection, direct', await introspect({ token: 'unknown' })],
  ];
  const oversized = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(`grant_type=client_credentials&x=${'a'.repeat(60 * 1024)}`));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  answers.push(['chunked, over the limit', { status: oversized.status, text: await oversized.text(), headers: Object.fromEntries(oversized.headers) }]);
  assert.deepEqual(since(before, await answeredBy('token'), 'token'), { direct: 1, provider: 2, reasons: { secret_not_verified: 1, unexpected_parameter: 1 } });
  assert.deepEqual(
    answers.map(([what, answer]) => [what, answer.status]),
    [
      ['direct', 200],
      ['declined (a wrong secret)', 401],
      ['declined (client_secret_post)', 200],
      ['introspection, direct', 200],
      ['chunked, over the limit', 413],
    ],
  );
  for (const [what, answer] of answers) {
    for (const [name, value] of Object.entries(expected)) assert.equal(answer.headers[name], value, `${what}: ${name}`);
    assert.match(answer.headers['content-security-policy'] ?? '', /script-src 'none'/, what);
    assert.ok(!answer.headers['content-security-policy']!.includes(','), `${what}: one policy`);
  }
});

test('every decline reason was met above, and counted', () => {
  const met = new Set([...declined].map((key) => key.split(':')[1]));
  assert.deepEqual(
    DECLINE_REASONS.filter((reason) => !met.has(reason)),
    [],
    'reasons never met',
  );
});
