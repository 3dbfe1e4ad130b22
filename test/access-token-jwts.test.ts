import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLocalJWKSet, exportJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { createAccessTokenVerifier } from '../src/oidc/access-token-jwts.ts';
import { keyPair } from './helpers/key-pairs.ts';

// The node:crypto verifier of Tally's JWT access tokens (src/oidc/access-token-jwts.ts) must judge as
// jose's jwtVerify judges (what token-modes.ts used alone before): every token below is asked of both,
// and whatever the verifier decides, jose decides the same; what it leaves undecided goes to jose.

const ISSUER = 'https://tally.example';
const now = () => Math.floor(Date.now() / 1000);

const es = keyPair();
const rsa = keyPair({ type: 'rsa' });
const other = keyPair();
const publicJwk = async (key: typeof es.publicKey, kid: string, alg: string) => ({ ...(await exportJWK(key)), kid, alg }) as JWK;
const keys = [await publicJwk(es.publicKey, 'es-1', 'ES256'), await publicJwk(rsa.publicKey, 'rs-1', 'RS256')];
const verifier = createAccessTokenVerifier(ISSUER, keys);
const keySet = createLocalJWKSet({ keys });

const claims = (extra: JWTPayload = {}): JWTPayload => ({
  iss: ISSUER,
  sub: 'client-1',
  aud: ISSUER,
  client_id: 'client-1',
  jti: 'jti-1',
  iat: now(),
  exp: now() + 600,
  scope: 'api:read',
  ...extra,
});

function signed(payload: JWTPayload, header: Record<string, unknown>, key: typeof es.privateKey = es.privateKey) {
  return new SignJWT(payload).setProtectedHeader(header as never).sign(key);
}

async function byJose(jwt: string): Promise<JWTPayload | string> {
  try {
    return (await jwtVerify(jwt, keySet, { issuer: ISSUER, typ: 'at+jwt', algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'] })).payload;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

/** The verifier's verdict, checked against jose's: the same claims, or a refusal where jose refuses. */
async function judged(jwt: string) {
  const verdict = verifier.verify(jwt);
  const jose = await byJose(jwt);
  if (verdict.claims) assert.deepEqual(verdict.claims, jose);
  if (verdict.refused) assert.equal(typeof jose, 'string', `jose accepts what the verifier refused (${verdict.refused})`);
  return verdict;
}

test('ES256 and RS256 tokens of the shape Tally signs: the same claims as jose, and decided from the header', async () => {
  const es256 = await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' });
  const rs256 = await signed(claims({ cnf: { jkt: 'abc' } }), { alg: 'RS256', typ: 'at+jwt', kid: 'rs-1' }, rsa.privateKey);
  for (const jwt of [es256, rs256]) {
    assert.equal(verifier.decides(jwt), true);
    assert.ok((await judged(jwt)).claims);
  }
});

test('a changed payload, a signature of another key under a known kid, a truncated signature: refused as forged', async () => {
  const jwt = await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' });
  const [header, , signature] = jwt.split('.');
  const changed = `${header}.${Buffer.from(JSON.stringify(claims({ scope: 'admin' }))).toString('base64url')}.${signature}`;
  const otherKey = await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' }, other.privateKey);
  const spaced = jwt.replace('.', '.\n');
  const rsaForged = `${(await signed(claims(), { alg: 'RS256', typ: 'at+jwt', kid: 'rs-1' }, rsa.privateKey)).slice(0, -8)}AAAAAAAA`;
  for (const forged of [changed, otherKey, spaced, rsaForged]) assert.equal((await judged(forged)).refused, 'forged');
  // A signature cut short: left to jose when its encoding is not canonical, else refused; jose refuses it.
  for (const cut of [1, 2, 3, 4]) assert.notEqual((await judged(jwt.slice(0, -cut))).claims !== undefined, true);
});

test('expired (exp now or before), another issuer or none: refused, as jose refuses', async () => {
  const header = { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' };
  assert.equal((await judged(await signed(claims({ exp: now() }), header))).refused, 'expired');
  assert.equal((await judged(await signed(claims({ exp: now() - 100 }), header))).refused, 'expired');
  assert.equal((await judged(await signed(claims({ iss: 'https://other.example' }), header))).refused, 'issuer');
  assert.equal((await judged(await signed(claims({ iss: undefined }), header))).refused, 'issuer');
  assert.ok((await judged(await signed(claims({ exp: now() + 2 }), header))).claims);
});

test('what it leaves to jose: an unknown kid, no kid, another alg for the key, another typ spelling, extra header members, nbf, odd claims, non-canonical encoding', async () => {
  const undecided = [
    await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'unknown' }, other.privateKey),
    await signed(claims(), { alg: 'ES256', typ: 'at+jwt' }),
    await signed(claims(), { alg: 'RS256', typ: 'at+jwt', kid: 'es-1' }, rsa.privateKey),
    await signed(claims(), { alg: 'ES256', typ: 'application/at+jwt', kid: 'es-1' }),
    await signed(claims(), { alg: 'ES256', typ: 'JWT', kid: 'es-1' }),
    await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1', crit: ['b64'], b64: true }),
    await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1', jku: 'https://attacker.example' }),
    await signed(claims({ nbf: now() }), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' }),
    await signed(claims({ exp: undefined }), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' }),
    await signed({ ...claims(), iat: '1' } as never, { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' }),
  ];
  const good = await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' });
  undecided.push(`${good}=`, `${good}.extra`, 'a.b.c', '..');
  for (const jwt of undecided) assert.equal(verifier.verify(jwt).undecided, true, jwt);
  // From the header alone (what the direct introspection asks): the first seven, and what is no JWS of this shape.
  for (const jwt of [...undecided.slice(0, 7), 'a.b.c', '..', `${good}.extra`]) assert.equal(verifier.decides(jwt), false, jwt);
  // The rest are found through the lookup all the same, which then asks jose (token-modes.ts).
  for (const jwt of undecided.slice(7, 10)) assert.equal(verifier.decides(jwt), true, jwt);
});

test('keys it cannot use (another algorithm, two under one kid) are left to jose', async () => {
  const ed = keyPair({ type: 'ed25519' });
  const edJwk = await publicJwk(ed.publicKey, 'ed-1', 'EdDSA');
  const twice = createAccessTokenVerifier(ISSUER, [...keys, await publicJwk(other.publicKey, 'es-1', 'ES256'), edJwk]);
  const es256 = await signed(claims(), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' });
  const eddsa = await signed(claims(), { alg: 'EdDSA', typ: 'at+jwt', kid: 'ed-1' }, ed.privateKey);
  assert.equal(twice.verify(es256).undecided, true);
  assert.equal(twice.verify(eddsa).undecided, true);
});

test('a signature checked once is remembered, its expiry is not: the same token is refused once expired; another string is checked afresh', async () => {
  // Two whole seconds before it expires, however slow this machine is between signing and checking.
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  await sleep(1000 - (Date.now() % 1000) + 5);
  const exp = now() + 2;
  const jwt = await signed(claims({ exp }), { alg: 'ES256', typ: 'at+jwt', kid: 'es-1' });
  assert.ok(verifier.verify(jwt).claims);
  assert.ok(verifier.verify(jwt).claims);
  const [header, , signature] = jwt.split('.');
  assert.equal(verifier.verify(`${header}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.${signature}`).refused, 'forged');
  await sleep(exp * 1000 - Date.now() + 100);
  assert.equal((await judged(jwt)).refused, 'expired');
});
