import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { loadConfig } from '../src/config/index.ts';
import { clientCertHeaderOf } from '../src/protocol/client-certificate.ts';
import { createValidator } from '../src/kits/validator/index.ts';
import { Browser } from './helpers/browser.ts';
import { createClient, createUser, REDIRECT_URI, unique, type RegisteredClient } from './helpers/fixtures.ts';
import { signInAndConsent } from './helpers/oauth.ts';
import { metricSample, securityEventCount, startServer, type TestServer } from './helpers/server.ts';
import { jwksOf, selfSigned, signedBy, thumbprintOf, tlsFetch, type Issued } from './helpers/tls.ts';

// RFC 8705 over Tally's own HTTPS listener (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE) with a
// throwaway CA, and through a trusted proxy's RFC 9440 Client-Cert header.

const dir = mkdtempSync(join(tmpdir(), 'tally-mtls-'));
const ca = selfSigned(dir, 'ca', '/CN=Tally Test CA', { ca: true });
const serverCert = signedBy(ca, dir, 'server', '/CN=localhost', { san: 'DNS:localhost,IP:127.0.0.1', server: true });
const clientOne = signedBy(ca, dir, 'client-one', '/O=Tally Tests/CN=client-one', { san: 'DNS:client-one.example,IP:127.0.0.9' });
const someoneElse = signedBy(ca, dir, 'someone-else', '/O=Tally Tests/CN=someone-else', { san: 'DNS:someone-else.example' });
// Same subject as client-one, from a CA the server does not trust.
const rogueCa = selfSigned(dir, 'rogue-ca', '/CN=Rogue CA', { ca: true });
const rogue = signedBy(rogueCa, dir, 'rogue', '/O=Tally Tests/CN=client-one', { san: 'DNS:client-one.example' });
const selfSignedClient = selfSigned(dir, 'self', '/CN=self-signed client');

let server: TestServer;
before(async () => {
  server = await startServer({ env: { TLS_CERT_FILE: serverCert.certFile, TLS_KEY_FILE: serverCert.keyFile, TLS_CLIENT_CA_FILE: ca.certFile } });
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const over = (client?: Issued) => tlsFetch({ ca: ca.cert, client });

function tlsClient(server: TestServer, metadata: Record<string, unknown>): RegisteredClient {
  return createClient(server, {
    client_name: 'mTLS client',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read',
    ...metadata,
  });
}

/** openid-client over the TLS listener, presenting `certificate`. */
function configFor(client: RegisteredClient, certificate: Issued | undefined, target = server) {
  const fetcher = target === server ? over(certificate) : fetch;
  return oidc.discovery(new URL(target.url), client.client_id, undefined, oidc.TlsClientAuth(), {
    [oidc.customFetch]: fetcher as oidc.CustomFetch,
    execute: target === server ? [] : [oidc.allowInsecureRequests],
  });
}

/** A raw token request (client_id in the body, as tls_client_auth sends it). */
async function tokenRequest(fetcher: typeof fetch, url: string, clientId: string, headers: Record<string, string> = {}) {
  const response = await fetcher(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, scope: 'api:read' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** A sample of the server's /metrics (0 when absent), over this suite's HTTPS. */
const metric = (target: TestServer, sample: string) => metricSample(target, sample, over());

const securityEvents = (target: TestServer, event: string) => securityEventCount(target, event, over());

async function introspect(fetcher: typeof fetch, url: string, clientId: string, token: string) {
  const response = await fetcher(`${url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: clientId }),
  });
  assert.equal(response.status, 200);
  return (await response.json()) as Record<string, any>;
}

test('discovery: https endpoints, the tls client authentication methods, certificate-bound tokens, no mtls_endpoint_aliases', async () => {
  const response = await over()(`${server.url}/.well-known/openid-configuration`);
  const discovery = (await response.json()) as Record<string, any>;
  assert.equal(discovery.issuer, server.url);
  assert.match(discovery.token_endpoint, /^https:\/\/localhost:\d+\/token$/);
  assert.ok(discovery.token_endpoint_auth_methods_supported.includes('tls_client_auth'));
  assert.ok(discovery.token_endpoint_auth_methods_supported.includes('self_signed_tls_client_auth'));
  assert.equal(discovery.tls_client_certificate_bound_access_tokens, true);
  assert.equal(discovery.mtls_endpoint_aliases, undefined, 'one listener: the ordinary endpoints take certificates');
});

test('a client without a certificate still reaches the endpoints that need none', async () => {
  const response = await over()(`${server.url}/healthz`);
  assert.equal(response.status, 200);
});

describe('tls_client_auth', () => {
  let client: RegisteredClient;
  before(() => {
    client = tlsClient(server, {
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=client-one,O=Tally Tests',
      tls_client_certificate_bound_access_tokens: true,
    });
  });

  test('registered → no client secret', () => {
    assert.equal(client.client_secret, undefined);
    assert.equal(client.tls_client_certificate_bound_access_tokens, true);
  });

  test('the certificate with the registered subject DN → a token bound to it (cnf.x5t#S256 at introspection)', async () => {
    const tokens = await oidc.clientCredentialsGrant(await configFor(client, clientOne), { scope: 'api:read' });
    assert.equal(tokens.token_type, 'bearer');
    const answer = await introspect(over(clientOne), server.url, client.client_id, tokens.access_token);
    assert.equal(answer.active, true);
    assert.equal(answer.client_id, client.client_id);
    assert.deepEqual(answer.cnf, { 'x5t#S256': thumbprintOf(clientOne) });
  });

  test('no certificate → 401 invalid_client, reported as client_auth_failed', async () => {
    const failures = () => securityEvents(server, 'client_auth_failed');
    const before = await failures();
    const { status, body } = await tokenRequest(over(), server.url, client.client_id);
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
    assert.equal(await failures(), before + 1);
  });

  test('a resource server introspecting a bound token with its secret → cnf (answered directly, as oidc-provider would)', async () => {
    const tokens = await oidc.clientCredentialsGrant(await configFor(client, clientOne), { scope: 'api:read' });
    const resourceServer = tlsClient(server, { introspection_audiences: [server.url] });
    const basic = `Basic ${Buffer.from(`${resourceServer.client_id}:${resourceServer.client_secret}`).toString('base64')}`;
    const direct = () => metric(server, 'tally_protocol_answers_total{endpoint="introspection",answered_by="tally"}');
    const before = await direct();
    const response = await over()(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: new URLSearchParams({ token: tokens.access_token }),
    });
    const answer = (await response.json()) as Record<string, any>;
    assert.equal(answer.active, true);
    assert.deepEqual(answer.cnf, { 'x5t#S256': thumbprintOf(clientOne) });
    assert.equal(await direct(), before + 1);
  });

  test('the same subject from a CA the server does not trust → 401 invalid_client', async () => {
    const { status, body } = await tokenRequest(over(rogue), server.url, client.client_id);
    assert.equal(status, 401, JSON.stringify(body));
    assert.equal(body.error, 'invalid_client');
  });

  test('a trusted certificate with another subject → 401 invalid_client', async () => {
    const { status, body } = await tokenRequest(over(someoneElse), server.url, client.client_id);
    assert.equal(status, 401, JSON.stringify(body));
    assert.equal(body.error, 'invalid_client');
  });

  test('a dNSName SAN registered as tls_client_auth_san_dns → its certificate only', async () => {
    const byDns = tlsClient(server, { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'client-one.example' });
    assert.equal((await tokenRequest(over(clientOne), server.url, byDns.client_id)).status, 200);
    assert.equal((await tokenRequest(over(someoneElse), server.url, byDns.client_id)).status, 401);
  });

  test('an iPAddress SAN registered as tls_client_auth_san_ip → its certificate only', async () => {
    const byIp = tlsClient(server, { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_ip: '127.0.0.9' });
    assert.equal((await tokenRequest(over(clientOne), server.url, byIp.client_id)).status, 200);
    assert.equal((await tokenRequest(over(someoneElse), server.url, byIp.client_id)).status, 401);
  });

  test('the Client-Cert header from a peer outside TRUST_PROXY is ignored', async () => {
    const { status, body } = await tokenRequest(over(), server.url, client.client_id, { 'client-cert': clientCertHeaderOf(clientOne.x509) });
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
  });
});

test('self_signed_tls_client_auth: the certificate registered in jwks → 200; another → 401', async () => {
  const client = tlsClient(server, { token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: jwksOf(selfSignedClient) });
  assert.equal(client.client_secret, undefined);
  const tokens = await oidc.clientCredentialsGrant(await configFor(client, selfSignedClient), { scope: 'api:read' });
  assert.ok(tokens.access_token);
  const { status, body } = await tokenRequest(over(clientOne), server.url, client.client_id);
  assert.equal(status, 401);
  assert.equal(body.error, 'invalid_client');
});

for (const mode of ['jwt', 'stateless'])
  describe(`${mode} mode`, () => {
    let client: RegisteredClient;
    let token: string;
    before(async () => {
      client = tlsClient(server, {
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_san_dns: 'client-one.example',
        tls_client_certificate_bound_access_tokens: true,
        token_mode: mode,
      });
      const { status, body } = await tokenRequest(over(clientOne), server.url, client.client_id);
      assert.equal(status, 200, JSON.stringify(body));
      token = body.access_token;
    });

    test('the access token carries cnf.x5t#S256', () => {
      assert.deepEqual(decodeJwt(token).cnf, { 'x5t#S256': thumbprintOf(clientOne) });
    });

    // Tally's JWT lookup (oidc/token-modes.ts) restores the binding from the JWT's cnf.
    test('introspection shows cnf', async () => {
      const answer = await introspect(over(clientOne), server.url, client.client_id, token);
      assert.equal(answer.active, true);
      assert.deepEqual(answer.cnf, { 'x5t#S256': thumbprintOf(clientOne) });
    });
  });

/** A code flow over TLS for a bound tls_client_auth client in `mode`; then userinfo over three connections. */
async function userinfoOverCertificates(mode: string) {
  const client = createClient(server, {
    client_name: 'mTLS web app',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    scope: 'openid profile',
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: 'CN=client-one,O=Tally Tests',
    tls_client_certificate_bound_access_tokens: true,
    token_mode: mode,
  });
  const user = createUser(server, unique('mtls'));
  const config = await configFor(client, clientOne);
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const callback = await signInAndConsent(new Browser(over()), url.href, user);
  const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
  const userinfo = (fetcher: typeof fetch) => fetcher(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
  const mine = await userinfo(over(clientOne));
  assert.equal(mine.status, 200);
  assert.equal(((await mine.json()) as { sub: string }).sub, user.id);
  assert.equal((await userinfo(over(someoneElse))).status, 401, 'another certificate');
  assert.equal((await userinfo(over())).status, 401, 'no certificate');
}

for (const mode of ['reference', 'jwt', 'stateless'])
  test(`${mode} mode: a certificate-bound token at userinfo → only over the same client certificate`, () => userinfoOverCertificates(mode));

for (const mode of ['reference', 'jwt', 'stateless'])
  test(`${mode} mode: a public client’s refresh token is bound to its certificate: another certificate → invalid_grant`, async () => {
    const client = createClient(server, {
      token_mode: mode,
      client_name: 'mTLS public app',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'openid offline_access',
      token_endpoint_auth_method: 'none',
      tls_client_certificate_bound_access_tokens: true,
    });
    const user = createUser(server, unique('mtls'));
    const publicConfig = (certificate?: Issued) =>
      oidc.discovery(new URL(server.url), client.client_id, undefined, oidc.None(), { [oidc.customFetch]: over(certificate) as oidc.CustomFetch });
    const config = await publicConfig(clientOne);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const callback = await signInAndConsent(new Browser(over()), url.href, user);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    assert.ok(tokens.refresh_token);
    await assert.rejects(oidc.refreshTokenGrant(await publicConfig(someoneElse), tokens.refresh_token), (error: { error?: string }) => {
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token);
  });

describe('the RFC 9440 Client-Cert header', () => {
  let proxied: TestServer;
  before(async () => {
    proxied = await startServer({ env: { TRUST_PROXY: 'loopback' } });
  });
  after(() => proxied?.stop());

  test('from a TRUST_PROXY peer → the client certificate (tls_client_auth and a bound token)', async () => {
    const client = tlsClient(proxied, {
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=client-one,O=Tally Tests',
      tls_client_certificate_bound_access_tokens: true,
    });
    const header = { 'client-cert': clientCertHeaderOf(clientOne.x509) };
    const { status, body } = await tokenRequest(fetch, proxied.url, client.client_id, header);
    assert.equal(status, 200, JSON.stringify(body));
    const answer = await introspect(
      (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as object), ...header } }),
      proxied.url,
      client.client_id,
      body.access_token,
    );
    assert.deepEqual(answer.cnf, { 'x5t#S256': thumbprintOf(clientOne) });
  });

  // A stolen certificate-bound token at a resource server: the validator kit checks the binding against
  // the certificate the request came with, for Tally's own tokens in every mode.
  for (const mode of ['reference', 'jwt', 'stateless'])
    test(`${mode} mode: the validator takes a certificate-bound token only with its certificate`, async () => {
      const client = tlsClient(proxied, {
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: 'CN=client-one,O=Tally Tests',
        tls_client_certificate_bound_access_tokens: true,
        token_mode: mode,
      });
      const { status, body } = await tokenRequest(fetch, proxied.url, client.client_id, { 'client-cert': clientCertHeaderOf(clientOne.x509) });
      assert.equal(status, 200, JSON.stringify(body));
      const resourceServer = tlsClient(proxied, { introspection_audiences: [proxied.url] });
      const validator = createValidator({
        issuer: proxied.url,
        audience: proxied.url,
        clientId: resourceServer.client_id,
        clientSecret: resourceServer.client_secret!,
      });
      try {
        const token = body.access_token as string;
        const mine = await validator.validate(token, { certificate: clientOne.x509.raw });
        assert.equal(mine.active, true);
        assert.equal(mine.client_id, client.client_id);
        assert.equal((await validator.validate(token, { certificate: someoneElse.x509.raw })).active, false, 'another certificate');
        assert.equal((await validator.validate(token)).active, false, 'no certificate');
      } finally {
        await validator.close();
      }
    });

  test('a value that is not an RFC 8941 byte sequence of a certificate → no certificate', async () => {
    const client = tlsClient(proxied, { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'client-one.example' });
    for (const value of [clientOne.x509.raw.toString('base64'), ':bm90IGEgY2VydGlmaWNhdGU=:', clientOne.x509.toString()]) {
      const { status } = await tokenRequest(fetch, proxied.url, client.client_id, { 'client-cert': value.replaceAll('\n', ' ') });
      assert.equal(status, 401, value.slice(0, 20));
    }
  });
});

describe('TLS variables at start', () => {
  const bad = (env: Record<string, string>, variable: RegExp) => assert.throws(() => loadConfig(env), variable);

  test('one of the pair without the other → an error naming the missing one', () => {
    bad({ TLS_CERT_FILE: serverCert.certFile }, /TLS_KEY_FILE/);
    bad({ TLS_KEY_FILE: serverCert.keyFile }, /TLS_CERT_FILE/);
  });

  test('a CA file without the pair → an error naming TLS_CLIENT_CA_FILE', () => {
    bad({ TLS_CLIENT_CA_FILE: ca.certFile }, /TLS_CLIENT_CA_FILE/);
  });

  test('a missing or unreadable file, or one holding no certificate or key → an error naming its variable', () => {
    const missing = join(dir, 'missing.pem');
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not PEM');
    bad({ TLS_CERT_FILE: missing, TLS_KEY_FILE: serverCert.keyFile }, /TLS_CERT_FILE.*cannot be read/);
    bad({ TLS_CERT_FILE: serverCert.certFile, TLS_KEY_FILE: missing }, /TLS_KEY_FILE.*cannot be read/);
    bad({ TLS_CERT_FILE: garbage, TLS_KEY_FILE: serverCert.keyFile }, /TLS_CERT_FILE.*no PEM certificate/);
    bad({ TLS_CERT_FILE: serverCert.certFile, TLS_KEY_FILE: garbage }, /TLS_KEY_FILE.*no PEM private key/);
    bad({ TLS_CERT_FILE: serverCert.certFile, TLS_KEY_FILE: serverCert.keyFile, TLS_CLIENT_CA_FILE: garbage }, /TLS_CLIENT_CA_FILE/);
  });

  test('a key that is not the certificate’s → an error naming TLS_KEY_FILE', () => {
    bad({ TLS_CERT_FILE: serverCert.certFile, TLS_KEY_FILE: clientOne.keyFile }, /TLS_KEY_FILE.*not the private key/);
  });

  test('the pair → HTTPS, and ISSUER defaults to https', () => {
    const config = loadConfig({ PORT: '4443', TLS_CERT_FILE: serverCert.certFile, TLS_KEY_FILE: serverCert.keyFile });
    assert.equal(config.issuer, 'https://localhost:4443');
    assert.ok(config.tls && !config.tls.ca);
  });

  test('the server stops at start, naming the variable', async () => {
    await assert.rejects(startServer({ env: { TLS_CERT_FILE: serverCert.certFile } }), /TLS_KEY_FILE/);
  });
});
