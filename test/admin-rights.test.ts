import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { admin, registerClient, registerUser } from './helpers/admin.ts';
import { ADMIN_KEY } from './helpers/admin.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { authorizationRequest, discover } from './helpers/oauth.ts';
import { securityEventCount, startServer, type TestServer } from './helpers/server.ts';

// Scope `admin` (CONTRACT, "OAuth 2.0 / OpenID Connect endpoints"): it opens the admin API only in an
// access token for the resource $ISSUER/admin, only clients whose metadata lists it may ask for it,
// and a user's token carries it only when the user has the role admin. Tried from both sides.

let server: TestServer;
let adminResource: string;
/** A web client whose metadata lists admin (the operator gave it). */
let consoleClient: RegisteredClient;
let consoleConfig: oidc.Configuration;

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  adminResource = `${server.url}/admin`;
  consoleClient = await registerClient(server, 'reference', { client_name: 'Console', scope: 'openid profile admin' });
  consoleConfig = await discover(server, consoleClient);
});
after(() => server.stop());

/** A user with the given roles, created through the admin API. */
async function userWithRoles(roles: string[]) {
  const user = await registerUser(server);
  if (roles.length) assert.equal((await admin(server, 'PATCH', `/users/${user.id}`, { roles })).status, 200);
  return user;
}

/** The code flow through the real login and consent pages; returns the consent page's HTML and the tokens. */
async function signIn(config: oidc.Configuration, user: { username: string; password: string }, scope: string, extra: Record<string, string> = {}) {
  const { url, verifier, state } = await authorizationRequest(config, scope, extra);
  const browser = new Browser();
  let page = await browser.navigate(url.href, {}, REDIRECT_URI);
  const [login] = parseForms(page.html, page.url);
  assert.ok(login && 'username' in login.fields, `the login page: ${page.html.slice(0, 300)}`);
  page = await browser.submit(login, { username: user.username, password: user.password }, REDIRECT_URI);
  const consent = page.html;
  const [allow] = parseForms(page.html, page.url);
  assert.ok(allow, `the consent page: ${page.html.slice(0, 300)}`);
  page = await browser.submit(allow, {}, REDIRECT_URI);
  assert.ok(page.url.startsWith(REDIRECT_URI), `a redirect to the client: ${page.html.slice(0, 300)}`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier, expectedState: state });
  return { consent, tokens };
}

const adminCall = (token: string) => admin(server, 'GET', '/clients', undefined, token);
const scopesOf = (tokens: { scope?: string | undefined }) => (tokens.scope ?? '').split(' ').filter(Boolean);

/** How many admin_auth_failed events /metrics has counted. */
const adminAuthFailures = () => securityEventCount(server, 'admin_auth_failed');

describe('user tokens', () => {
  test('an ordinary user consenting to a client whose metadata lists admin → a token without admin; the admin API answers 403', async () => {
    const user = await userWithRoles([]);
    const { consent, tokens } = await signIn(consoleConfig, user, 'openid admin', { resource: adminResource });
    assert.doesNotMatch(consent, /administrator|\(admin\)/i, 'admin is not offered to a user who cannot have it');
    assert.ok(!scopesOf(tokens).includes('admin'), `scope: ${tokens.scope}`);
    const before = await adminAuthFailures();
    const answer = await adminCall(tokens.access_token);
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(
      (await admin(server, 'POST', '/users', { username: `sneaky${Date.now()}`, password: 'long enough password' }, tokens.access_token)).status,
      403,
    );
    assert.equal(await adminAuthFailures(), before + 2, 'each refusal is an admin_auth_failed event');
    await sleep(100);
    assert.match(server.output(), /"reason":"no_admin_scope"[^\n]*"event":"admin_auth_failed"/);

    // Without the resource: the default audience never carries admin either.
    const plain = await signIn(consoleConfig, user, 'openid admin', { prompt: 'consent' });
    assert.ok(!scopesOf(plain.tokens).includes('admin'));
    assert.equal((await adminCall(plain.tokens.access_token)).status, 403);
  });

  test('an admin-role user through the same client with resource=$ISSUER/admin → told plainly, and the token opens GET /admin/clients', async () => {
    const user = await userWithRoles(['admin', 'ops']);
    const { consent, tokens } = await signIn(consoleConfig, user, 'openid admin', { resource: adminResource });
    assert.match(consent, /Console asks for administrator rights over this server/);
    assert.doesNotMatch(consent, /Use admin/);
    assert.deepEqual(scopesOf(tokens), ['admin']);
    const answer = await adminCall(tokens.access_token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));

    // Its rights follow the role: taken away, the same token opens nothing; given back, it does again.
    assert.equal((await admin(server, 'PATCH', `/users/${user.id}`, { roles: ['ops'] })).status, 200);
    assert.equal((await adminCall(tokens.access_token)).status, 403);
    assert.equal((await admin(server, 'PATCH', `/users/${user.id}`, { roles: ['ops', 'admin'] })).status, 200);
    assert.equal((await adminCall(tokens.access_token)).status, 200);
  });

  test('an admin-role user without the resource → a token for the default audience, without admin → 403', async () => {
    const user = await userWithRoles(['admin']);
    const { tokens } = await signIn(consoleConfig, user, 'openid admin');
    assert.ok(!scopesOf(tokens).includes('admin'), `scope: ${tokens.scope}`);
    assert.equal((await adminCall(tokens.access_token)).status, 403);
  });

  test('a client whose metadata does not list admin asking for it → refused before any sign-in', async () => {
    const client = await registerClient(server, 'reference', { scope: 'openid profile' });
    const config = await discover(server, client);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid admin',
      resource: adminResource,
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await new Browser().navigate(url.href, {}, REDIRECT_URI);
    assert.ok(page.url.startsWith(REDIRECT_URI), page.html.slice(0, 300));
    assert.match(new URL(page.url).searchParams.get('error') ?? '', /^invalid_(scope|target)$/);
  });
});

describe('client-credentials tokens', () => {
  const grant = (config: oidc.Configuration, parameters: Record<string, string>) => oidc.clientCredentialsGrant(config, parameters);

  test('a client whose scope lists admin: a working admin token only with resource=$ISSUER/admin', async () => {
    for (const mode of ['reference', 'jwt']) {
      const client = await registerClient(server, mode, { scope: 'admin api:read' });
      const config = await discover(server, client);
      const good = await grant(config, { scope: 'admin', resource: adminResource });
      assert.equal(good.scope, 'admin');
      assert.equal((await adminCall(good.access_token)).status, 200, mode);

      // Minted for another resource, or for the default one: admin is not among its scopes, and it is refused.
      const unrelated = await grant(config, { scope: 'admin api:read', resource: 'https://unrelated-api.example.com' });
      assert.equal(unrelated.scope, 'api:read', mode);
      assert.equal((await adminCall(unrelated.access_token)).status, 403, mode);
      const plain = await grant(config, { scope: 'admin api:read' });
      assert.equal(plain.scope, 'api:read', mode);
      assert.equal((await adminCall(plain.access_token)).status, 403, mode);
      // The admin resource serves admin alone.
      const other = await grant(config, { scope: 'api:read', resource: adminResource });
      assert.equal(other.scope, undefined, mode);
      assert.equal((await adminCall(other.access_token)).status, 403, mode);
    }
  });

  test('a client whose scope does not list admin cannot get it at all', async () => {
    const listed = await registerClient(server, 'reference', { scope: 'api:read' });
    const unlisted = await registerClient(server, 'reference', { scope: undefined });
    for (const client of [listed, unlisted]) {
      const config = await discover(server, client);
      for (const parameters of [{ scope: 'admin', resource: adminResource }, { resource: adminResource }] as Record<string, string>[]) {
        await assert.rejects(grant(config, parameters), (error: oidc.ResponseBodyError) => {
          assert.match(error.error, /^invalid_(scope|target)$/, `${client.scope}: ${JSON.stringify(parameters)}`);
          return true;
        });
      }
      if (client === listed) await assert.rejects(grant(config, { scope: 'admin' }), (error: oidc.ResponseBodyError) => error.error === 'invalid_scope');
    }
  });

  test('missing, wrong and unknown credentials → 401 problems, each an admin_auth_failed event', async () => {
    const before = await adminAuthFailures();
    const noHeader = await fetch(`${server.url}/admin/clients`);
    assert.equal(noHeader.status, 401);
    assert.equal((await adminCall('not-the-admin-key-0123456789-abcdefghijklmnop')).status, 401);
    assert.equal(await adminAuthFailures(), before + 2);
    await sleep(100);
    assert.match(server.output(), /"reason":"no_credentials","ip":"[^"]+"[^\n]*"event":"admin_auth_failed"/);
    assert.match(server.output(), /"reason":"invalid_credentials","ip":"[^"]+"[^\n]*"event":"admin_auth_failed"/);
    assert.doesNotMatch(server.output(), /not-the-admin-key/, 'the credential is never logged');
  });
});
