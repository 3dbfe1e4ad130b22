import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { countsOf, type Counts } from './helpers/direct-provider.ts';
import { keyPair } from './helpers/key-pairs.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { securityEventCount, startServer, type TestServer } from './helpers/server.ts';

// JWT access tokens (jwt and stateless modes) are introspected by Tally directly when its JWT lookup
// judges them itself (src/oidc/access-token-jwts.ts), as reference tokens are (test/direct-answers.test.ts):
// each case is asked of oidc-provider (client_secret_post, which the direct answer declines) and of
// Tally (HTTP Basic), and the answers must be the same, byte for byte; /metrics says who answered.

let server: TestServer;
let resourceServer: RegisteredClient;
let counter = 0;

const MODES = ['jwt', 'stateless'] as const;
const newClient = (mode: string, extra: Record<string, unknown> = {}) =>
  registerClient(server, mode, { client_name: `${mode} jwt-introspect ${++counter}`, ...extra });

async function introspect(params: Record<string, string>, how: 'basic' | 'post', client = resourceServer) {
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (how === 'post') {
    form.append('client_id', client.client_id);
    form.append('client_secret', client.client_secret!);
  } else
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`;
  const response = await fetch(`${server.url}/token/introspection`, { method: 'POST', headers, body: form });
  return { status: response.status, text: await response.text(), headers: Object.fromEntries(response.headers) };
}

const forgedTokens = () => securityEventCount(server, 'forged_token');

const answeredBy = async (): Promise<Counts> => countsOf(await (await fetch(`${server.url}/metrics`)).text(), 'introspection');
const VOLATILE = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
const stable = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).filter(([name]) => !VOLATILE.has(name)));

/** Who answered between two counts, and why oidc-provider did. */
function since(before: Counts, afterwards: Counts) {
  const reasons: Record<string, number> = {};
  for (const [reason, n] of Object.entries(afterwards.declines)) if (n !== (before.declines[reason] ?? 0)) reasons[reason] = n - (before.declines[reason] ?? 0);
  return { direct: afterwards.direct - before.direct, provider: afterwards.provider - before.provider, reasons };
}

/** oidc-provider's answer, then Tally's direct one (counted as answered_by="tally"): the same. */
async function bothWays(params: Record<string, string>, client = resourceServer): Promise<Record<string, unknown>> {
  const before = await answeredBy();
  const byProvider = await introspect(params, 'post', client);
  const direct = await introspect(params, 'basic', client);
  assert.deepEqual(since(before, await answeredBy()), { direct: 1, provider: 1, reasons: { unexpected_parameter: 1 } }, 'one answer each way');
  assert.equal(direct.status, 200);
  assert.equal(direct.text, byProvider.text, 'the same JSON, field for field and in the same order');
  assert.deepEqual(stable(direct.headers), stable(byProvider.headers));
  return JSON.parse(direct.text);
}

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  resourceServer = await newClient('reference', {
    client_name: 'resource server',
    grant_types: ['client_credentials'],
    response_types: [],
    introspection_audiences: [server.url],
  });
  await introspect({ token: 'x'.repeat(43) }, 'basic'); // its secret verified once: answered directly from now on
});
after(() => server.stop());

for (const mode of MODES) {
  describe(`${mode} mode: introspected by Tally, with oidc-provider's answer`, () => {
    test("a client's own token and another client's (by audience); a hint changes nothing", async () => {
      const client = await newClient(mode);
      const config = await discover(server, client);
      const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      assert.equal(decodeProtectedHeader(access_token).typ, 'at+jwt');
      const body = await bothWays({ token: access_token });
      assert.equal(body.active, true);
      assert.equal(body.client_id, client.client_id);
      assert.equal(body.sub, client.client_id);
      assert.equal(body.jti, decodeJwt(access_token).jti);
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.scope, 'api:read');
      assert.deepEqual(await bothWays({ token: access_token, token_type_hint: 'refresh_token' }), body);
      assert.deepEqual(await bothWays({ token: access_token, token_type_hint: 'access_token' }, client), body);
    });

    test("a user's token (its grant checked); revoked with its grant: inactive", async () => {
      const client = await newClient(mode);
      const config = await discover(server, client);
      const tokens = await codeFlow(config, await registerUser(server));
      const body = await bothWays({ token: tokens.access_token });
      assert.equal(body.active, true);
      assert.equal(body.sub, decodeJwt(tokens.access_token).sub);
      assert.equal(typeof body.grant_id, 'string');
      await oidc.tokenRevocation(config, tokens.refresh_token!);
      assert.deepEqual(await bothWays({ token: tokens.access_token }), { active: false });
    });

    test('a DPoP-bound token: token_type DPoP, with its cnf', async () => {
      const client = await newClient(mode);
      const config = await discover(server, client);
      const keyPair = await oidc.randomDPoPKeyPair();
      const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
      const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'api:read' }, { DPoP: oidc.getDPoPHandle(config, keyPair) });
      const body = await bothWays({ token: access_token });
      assert.equal(body.token_type, 'DPoP');
      assert.deepEqual(body.cnf, { jkt });
    });

    test('revoked at the revocation endpoint, or in bulk through the admin API: inactive', async () => {
      const client = await newClient(mode);
      const config = await discover(server, client);
      const first = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      await oidc.tokenRevocation(config, first.access_token);
      assert.deepEqual(await bothWays({ token: first.access_token }), { active: false });
      // A bulk revocation counts to the second: a token issued in the same second is revoked with it.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const second = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      assert.equal((await bothWays({ token: second.access_token })).active, true);
      assert.equal((await admin(server, 'POST', '/revocations', { client_id: client.client_id })).status, 200);
      assert.deepEqual(await bothWays({ token: second.access_token }), { active: false });
    });

    test('to a client outside its audience (and to a public client): inactive', async () => {
      const { access_token } = await oidc.clientCredentialsGrant(await discover(server, await newClient(mode)), { scope: 'api:read' });
      const elsewhere = await newClient('reference', {
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        introspection_audiences: ['https://api.example'],
      });
      assert.deepEqual(await bothWays({ token: access_token }, elsewhere), { active: false });
    });

    test('a changed payload under the same signature: inactive (counted as forged), answered by Tally', async () => {
      const { access_token } = await oidc.clientCredentialsGrant(await discover(server, await newClient(mode)), { scope: 'api:read' });
      const [header, payload, signature] = access_token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
      const changed = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${signature}`;
      const before = await forgedTokens();
      assert.deepEqual(await bothWays({ token: changed }), { active: false });
      assert.equal((await forgedTokens()) - before, 2, 'reported by either path');
    });
  });
}

describe('JWTs left to oidc-provider (jwt_undecided), with the same answer', () => {
  test('signed by another key (an unknown kid), or with a header Tally does not write', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(await discover(server, await newClient('jwt')), { scope: 'api:read' });
    const claims = decodeJwt(access_token);
    const key = keyPair().privateKey;
    const { kid } = decodeProtectedHeader(access_token);
    const tokens = [
      await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'someone-else' }).sign(key),
      await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'application/at+jwt', kid: kid! }).sign(key),
    ];
    for (const token of tokens) {
      const before = await answeredBy();
      const answer = await introspect({ token }, 'basic');
      assert.deepEqual(since(before, await answeredBy()), { direct: 0, provider: 1, reasons: { jwt_undecided: 1 } });
      assert.equal(answer.text, '{"active":false}');
    }
  });
});

describe('an expired token: inactive, answered by Tally (a server whose access tokens live two seconds)', () => {
  let kept: [TestServer, RegisteredClient];
  before(async () => {
    kept = [server, resourceServer];
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, ACCESS_TOKEN_TTL: '2' } });
    resourceServer = await newClient('reference', {
      client_name: 'resource server',
      grant_types: ['client_credentials'],
      response_types: [],
      introspection_audiences: [server.url],
    });
    await introspect({ token: 'x'.repeat(43) }, 'basic');
  });
  after(async () => {
    await server.stop();
    [server, resourceServer] = kept;
  });

  for (const mode of MODES) {
    test(`${mode} mode`, async () => {
      const config = await discover(server, await newClient(mode));
      // Issued at the start of a second, so that it lives its two whole seconds (iat is whole seconds), not one.
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
      const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      assert.equal((await bothWays({ token: access_token })).active, true);
      const { exp } = decodeJwt(access_token);
      await new Promise((resolve) => setTimeout(resolve, exp! * 1000 - Date.now() + 50));
      assert.deepEqual(await bothWays({ token: access_token }), { active: false });
    });
  }
});
