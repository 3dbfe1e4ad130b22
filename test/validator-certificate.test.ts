import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest, createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createValidator, requireToken, type RequireTokenOptions, type Validator } from '../src/kits/validator/index.ts';

// Certificate-bound tokens (RFC 8705 §3) at the validator. Tally's server does not issue them yet
// (mutual TLS is being added beside this), so a stand-in issuer plays its part here: discovery, a
// JWKS, and introspection answers carrying `cnf["x5t#S256"]`, as oidc-provider writes them. What is
// real: the validator, requireToken, an HTTPS listener asking for client certificates, openssl's
// certificates, and the RFC 9440 Client-Cert header.

const noOpenssl = spawnSync('openssl', ['version']).error ? 'openssl not installed: apt-get install openssl' : undefined;
const dir = mkdtempSync(join(tmpdir(), 'tally-mtls-'));
const servers: Server[] = [];
let issuer: string;
let signingKey: CryptoKey;
/** What the stand-in introspection endpoint answers, by token. */
const answers = new Map<string, Record<string, unknown>>();
let validator: Validator;
let serverCert: string;
let alice: { cert: string; key: string; der: Buffer };
let mallory: { cert: string; key: string; der: Buffer };

/** A self-signed certificate and its key (PEM), from openssl. */
function selfSigned(name: string, extra: string[] = []) {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      ...extra,
    ],
    {
      stdio: 'ignore',
    },
  );
  const pem = readFileSync(cert, 'utf8');
  return { cert: pem, key: readFileSync(key, 'utf8'), der: new X509Certificate(pem).raw };
}

const thumbprint = (der: Buffer) => createHash('sha256').update(der).digest('base64url');

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return (server.address() as { port: number }).port;
}

function protectedApp(options: RequireTokenOptions = {}) {
  const app = express();
  app.get('/orders', requireToken(validator, options), (req, res) => res.json((req as unknown as { token: unknown }).token));
  return app;
}

before(async () => {
  const stand = express();
  stand.get('/.well-known/openid-configuration', (_req, res) =>
    res.json({ issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token`, introspection_endpoint: `${issuer}/introspect` }),
  );
  const keys = await generateKeyPair('ES256', { extractable: true });
  signingKey = keys.privateKey;
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'stand-in', alg: 'ES256', use: 'sig' };
  stand.get('/jwks', (_req, res) => res.json({ keys: [jwk] }));
  stand.post('/introspect', express.urlencoded({ extended: false }), (req, res) => res.json(answers.get(String(req.body.token)) ?? { active: false }));
  issuer = `http://127.0.0.1:${await listen(createServer(stand))}`;
  validator = createValidator({ issuer, audience: 'https://api.example.com', clientId: 'orders-api', clientSecret: 'orders-api-secret' });
  if (noOpenssl) return;
  alice = selfSigned('alice');
  mallory = selfSigned('mallory');
});
after(async () => {
  await validator?.close();
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (bound: Buffer | undefined) => ({
  sub: 'service-a',
  client_id: 'service-a',
  scope: 'api:read',
  aud: 'https://api.example.com',
  iss: issuer,
  iat: now(),
  exp: now() + 300,
  ...(bound ? { cnf: { 'x5t#S256': thumbprint(bound) } } : {}),
});

/** A reference token whose introspection answer binds it to `bound` (or to nothing). */
function referenceToken(bound: Buffer | undefined): string {
  const token = randomUUID().replaceAll('-', '');
  answers.set(token, { active: true, token_type: 'Bearer', ...claims(bound) });
  return token;
}

/** A JWT access token (RFC 9068) bound to `bound`; introspection knows it active (the stand-in has no revocation feed). */
async function jwtToken(bound: Buffer | undefined): Promise<string> {
  const token = await new SignJWT({ ...claims(bound), jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'stand-in' })
    .sign(signingKey);
  answers.set(token, { active: true, token_type: 'Bearer', ...claims(bound) });
  return token;
}

function get(url: string, token: string, tls: { cert?: string; key?: string; ca?: string } = {}, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; challenge: string }>((resolve, reject) => {
    const req = httpsRequest(url, { ...tls, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, challenge: String(res.headers['www-authenticate'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('certificate-bound tokens (RFC 8705 §3)', { skip: noOpenssl }, () => {
  test('over HTTPS: the TLS peer certificate must have the thumbprint of cnf x5t#S256, for introspected and JWT tokens', async () => {
    const tlsServer = selfSigned('localhost', ['-addext', 'subjectAltName=IP:127.0.0.1']);
    serverCert = tlsServer.cert;
    const api = createHttpsServer({ key: tlsServer.key, cert: tlsServer.cert, requestCert: true, rejectUnauthorized: false }, protectedApp());
    const url = `https://127.0.0.1:${await listen(api as unknown as Server)}/orders`;
    for (const [kind, token] of [
      ['reference', referenceToken(alice.der)],
      ['jwt', await jwtToken(alice.der)],
    ] as const) {
      assert.equal((await get(url, token, { ca: serverCert, cert: alice.cert, key: alice.key })).status, 200, `${kind} with its certificate`);
      for (const [name, tls] of Object.entries({ another: { ca: serverCert, cert: mallory.cert, key: mallory.key }, none: { ca: serverCert } })) {
        const refused = await get(url, token, tls);
        assert.equal(refused.status, 401, `${kind} with ${name} certificate`);
        assert.match(
          refused.challenge,
          /^Bearer realm="tally", error="invalid_token", error_description="the access token is bound to another client certificate"/,
        );
      }
    }
    // An unbound token needs no certificate.
    assert.equal((await get(url, referenceToken(undefined), { ca: serverCert })).status, 200);
  });

  test('the Client-Cert header (RFC 9440) counts only when the middleware is told to trust it', async () => {
    const trusting = `http://127.0.0.1:${await listen(createServer(protectedApp({ trustClientCertHeader: true })))}/orders`;
    const ignoring = `http://127.0.0.1:${await listen(createServer(protectedApp()))}/orders`;
    const token = referenceToken(alice.der);
    const call = (url: string, der: Buffer | string) =>
      fetch(url, { headers: { authorization: `Bearer ${token}`, 'client-cert': typeof der === 'string' ? der : `:${der.toString('base64')}:` } });
    assert.equal((await call(trusting, alice.der)).status, 200);
    assert.equal((await call(trusting, mallory.der)).status, 401);
    assert.equal((await call(trusting, 'not a certificate')).status, 401);
    assert.equal((await call(trusting, `:${Buffer.from('junk').toString('base64')}:`)).status, 401);
    assert.equal((await call(ignoring, alice.der)).status, 401, 'untrusted header ignored');
  });

  test('validate(token, { certificate }): DER or X509Certificate; without it a bound token is inactive', async () => {
    const token = await jwtToken(alice.der);
    assert.deepEqual(await validator.validate(token), { active: false });
    assert.equal((await validator.validate(token, { certificate: alice.der })).active, true);
    const result = await validator.validate(token, { certificate: new X509Certificate(alice.cert) });
    assert.deepEqual(result.cnf, { 'x5t#S256': thumbprint(alice.der) });
    assert.deepEqual(await validator.validate(token, { certificate: mallory.der }), { active: false });
    assert.equal((await validator.check(token, { certificate: mallory.der })).refusal?.error, 'invalid_token');
  });

  test('an introspection answer saying token_type DPoP without cnf.jkt → refused as Bearer and as DPoP', async () => {
    const token = referenceToken(undefined);
    answers.set(token, { ...answers.get(token), token_type: 'DPoP' });
    assert.deepEqual(await validator.validate(token), { active: false });
    const keys = await generateKeyPair('ES256', { extractable: true });
    const url = 'https://api.example.com/orders';
    const proof = await new SignJWT({ htm: 'GET', htu: url, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
      .setIssuedAt()
      .sign(keys.privateKey);
    assert.equal((await validator.check(token, { dpop: { proof, method: 'GET', url } })).refusal?.error, 'invalid_token');
  });
});
