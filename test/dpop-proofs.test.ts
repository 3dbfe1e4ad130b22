import assert from 'node:assert/strict';
import { randomUUID, sign, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { createDpopProofs } from '../src/oidc/dpop-proofs.ts';
import { keyPair as newKeyPair } from './helpers/key-pairs.ts';

// The direct answer's DPoP proof check (src/oidc/dpop-proofs.ts) against jose's, which oidc-provider
// uses: what it accepts, jose accepts with the same thumbprint; what it has judged once (a header, a
// key) does not change how the next proof is judged. test/direct-answers.test.ts compares whole answers.

const ENDPOINT = 'https://issuer.example/token';
const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');

function keyPair(kind: 'ec' | 'ed25519' = 'ec') {
  const { privateKey, publicJwk } = newKeyPair({ type: kind });
  const { kty, crv, x, y } = publicJwk as Record<string, string>;
  return { privateKey, alg: kind === 'ec' ? 'ES256' : 'Ed25519', jwk: kty === 'EC' ? { kty, crv, x, y } : { kty, crv, x } };
}

function proof({ privateKey, alg, jwk }: { privateKey: KeyObject; alg: string; jwk: object }, claims: Record<string, unknown> = {}) {
  const input = `${b64(JSON.stringify({ typ: 'dpop+jwt', alg, jwk }))}.${b64(
    JSON.stringify({ htm: 'POST', htu: ENDPOINT, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims }),
  )}`;
  return `${input}.${b64(sign(alg === 'ES256' ? 'sha256' : null, Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }))}`;
}

const proofs = () => createDpopProofs({ algorithms: ['ES256', 'Ed25519', 'EdDSA'], endpoint: ENDPOINT, iatWindow: 300 });

test('an accepted proof → jose accepts it too, with the same RFC 7638 thumbprint (P-256 and Ed25519)', async () => {
  const check = proofs();
  for (const kind of ['ec', 'ed25519'] as const) {
    const key = keyPair(kind);
    const value = proof(key);
    const outcome = check.check(value, 'POST');
    assert.equal(outcome.declined, undefined);
    const { protectedHeader, payload } = await jwtVerify(value, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'Ed25519'] });
    assert.equal(outcome.thumbprint, await calculateJwkThumbprint(protectedHeader.jwk!));
    assert.equal(outcome.jti, payload.jti);
  }
});

test('a header judged before, then a proof with a spoiled signature or claims → refused; the method must match', () => {
  const check = proofs();
  const key = keyPair();
  assert.equal(check.check(proof(key), 'POST').declined, undefined);
  const value = proof(key);
  const spoiled = `${value.slice(0, value.lastIndexOf('.') + 1)}${b64(Buffer.alloc(64, 1))}`;
  assert.equal(check.check(spoiled, 'POST').declined, 'invalid');
  assert.equal(check.check(value, 'GET').declined, 'invalid');
  assert.equal(check.check(proof(key, { htu: 'https://issuer.example/token/' }), 'POST').declined, 'invalid');
  assert.equal(check.check(proof(key, { iat: 0 }), 'POST').declined, 'invalid');
  assert.equal(check.check(proof(key, { jti: '' }), 'POST').declined, 'invalid');
  assert.equal(check.check(value, 'POST').declined, undefined, 'replay is not judged here (the replay mark is)');
});

test('more keys than are kept → every proof still judged by its own key', () => {
  const check = proofs();
  const keys = Array.from({ length: 1005 }, () => keyPair());
  for (const key of keys) assert.equal(check.check(proof(key), 'POST').declined, undefined);
  // The first keys were dropped and are judged afresh; a header naming one key, signed by another, is refused.
  assert.equal(check.check(proof(keys[0]!), 'POST').declined, undefined);
  assert.equal(check.check(proof({ ...keys[1]!, privateKey: keys[2]!.privateKey }), 'POST').declined, 'invalid');
});
