import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compactVerify, createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, calculateJwkThumbprint, type JWK } from 'jose';
import { ExternalSigningKey } from 'oidc-provider';
import * as oidc from 'openid-client';
import { randomBytesPooled } from '../src/lib/crypto.ts';
import { providerSigningKeys } from '../src/oidc/signing-keys.ts';
import { ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

async function privateJwk(alg: 'ES256' | 'RS256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

const b64 = (value: object | Uint8Array) => Buffer.from(value instanceof Uint8Array ? value : JSON.stringify(value)).toString('base64url');

describe('signing keys handed to oidc-provider', () => {
  test('ES256 and RS256 keys sign with node:crypto and publish exactly their public JWK', async () => {
    for (const alg of ['ES256', 'RS256'] as const) {
      const jwk = await privateJwk(alg);
      const [key] = providerSigningKeys([jwk]);
      assert.ok(key instanceof ExternalSigningKey);
      const published = { kty: key.kty, crv: key.crv, x: key.x, y: key.y, n: key.n, e: key.e, kid: key.kid, alg: key.alg, use: key.use };
      const { kty, crv, x, y, n, e } = jwk;
      assert.deepEqual(JSON.parse(JSON.stringify(published)), JSON.parse(JSON.stringify({ kty, crv, x, y, n, e, kid: jwk.kid, alg, use: 'sig' })));

      // A JWS made with the key's signature verifies against the public JWK alone (ES256: P1363 r||s).
      const header = b64({ alg, kid: jwk.kid });
      const payload = b64({ sub: 'someone' });
      const signature = await key.sign(Buffer.from(`${header}.${payload}`));
      assert.equal(signature.length, alg === 'ES256' ? 64 : 256);
      const { payload: verified } = await compactVerify(`${header}.${payload}.${b64(signature)}`, { kty, crv, x, y, n, e });
      assert.deepEqual(JSON.parse(Buffer.from(verified).toString()), { sub: 'someone' });
    }
  });

  test('keys of other algorithms stay JWKs, and a key refuses to be switched to another algorithm', async () => {
    const es256 = await privateJwk('ES256');
    const unnamed = { ...es256, alg: undefined };
    assert.equal(providerSigningKeys([unnamed])[0], unnamed);
    const [key] = providerSigningKeys([es256]) as ExternalSigningKey[];
    assert.throws(() => Object.assign(key!, { alg: 'ES384' }), TypeError);
  });
});

describe('JWTs signed by a running server', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  });
  after(() => server.stop());

  test('ES256 access tokens and ID tokens verify against the published JWKS, as RS256 ID tokens do', async () => {
    const jwks = createRemoteJWKSet(new URL(`${server.url}/jwks`));
    const user = await registerUser(server);
    for (const alg of ['ES256', 'RS256']) {
      const client = await registerClient(server, 'jwt', { id_token_signed_response_alg: alg });
      const tokens = await codeFlow(await discover(server, client), user);

      const idToken = await jwtVerify(tokens.id_token!, jwks, { issuer: server.url, audience: client.client_id });
      assert.equal(idToken.protectedHeader.alg, alg);
      assert.equal(idToken.payload.sub, user.id);

      const accessToken = await jwtVerify(tokens.access_token, jwks, { issuer: server.url, typ: 'at+jwt' });
      assert.equal(accessToken.protectedHeader.alg, 'ES256');
      assert.equal(accessToken.payload.client_id, client.client_id);
    }

    // The client credentials grant (answered without oidc-provider's Koa stack) signs the same way.
    const service = await registerClient(server, 'stateless');
    const config = await discover(server, service);
    const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    assert.equal(decodeProtectedHeader(access_token).alg, 'ES256');
    await jwtVerify(access_token, jwks, { issuer: server.url, typ: 'at+jwt' });
  });
});

describe('pooled random bytes', () => {
  test('are fresh, of the asked size, and not changed by later refills of the pool', () => {
    const first = randomBytesPooled(32);
    const copy = Buffer.from(first);
    const seen = new Set<string>([first.toString('hex')]);
    // 10,000 × 32 bytes goes through the 4 KiB pool about 80 times.
    for (let i = 0; i < 10_000; i++) {
      const bytes = randomBytesPooled(32);
      assert.equal(bytes.length, 32);
      seen.add(bytes.toString('hex'));
    }
    assert.equal(seen.size, 10_001, 'no value repeats');
    assert.deepEqual(first, copy, 'a value handed out stays as it was');
    assert.notDeepEqual(first, Buffer.alloc(32));
    assert.equal(randomBytesPooled(12).length, 12);
    assert.throws(() => randomBytesPooled(8192), RangeError);
  });
});
