import assert from 'node:assert/strict';
import { createHash, randomUUID, sign, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { createDpopProofChecker, htuOf } from '../src/protocol/dpop-proof.ts';
import { keyPair as newKeyPair } from './helpers/key-pairs.ts';

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// The DPoP proof check that the server's direct answer and the validator kit share
// (src/protocol/dpop-proof.ts), against jose's jwtVerify with EmbeddedJWK (oidc-provider's check, and
// the kit's before): every variant is accepted by both, with the same thumbprint, or refused by both.

const URL_ = 'https://api.example/things?page=2';
const HTU = htuOf(URL_)!;
const TOKEN = 'an-access-token';
const ath = createHash('sha256').update(TOKEN).digest('base64url');
const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];

type Key = { privateKey: KeyObject; alg: string; jwk: Record<string, unknown> };
function keyPair(alg: string, bits = 2048): Key {
  const pair = newKeyPair(alg === 'ES256' ? { type: 'ec' } : alg.startsWith('Ed') ? { type: 'ed25519' } : { type: 'rsa', modulusLength: bits });
  return { privateKey: pair.privateKey, alg, jwk: { ...pair.publicJwk } };
}

function proof(key: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const input = `${b64(JSON.stringify({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk, ...header }))}.${b64(
    JSON.stringify({ htm: 'GET', htu: 'https://api.example/things', iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath, ...claims }),
  )}`;
  const digest = key.alg.startsWith('Ed') ? null : 'sha256';
  const options = key.alg === 'PS256' ? { key: key.privateKey, padding: 6, saltLength: 32 } : { key: key.privateKey, dsaEncoding: 'ieee-p1363' as const };
  return `${input}.${b64(sign(digest, Buffer.from(input), options))}`;
}

const expected = { method: 'GET', htu: HTU, windowSeconds: 300, accessToken: TOKEN };

/** jose's answer: the thumbprint, or undefined when it refuses the proof (or a claim the kit requires). */
async function joseAnswer(value: string): Promise<string | undefined> {
  try {
    const { protectedHeader, payload } = await jwtVerify(value, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ALGORITHMS });
    if (payload.htm !== 'GET' || htuOf(payload.htu) !== HTU || payload.ath !== ath || typeof payload.jti !== 'string' || !payload.jti) return undefined;
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > 300) return undefined;
    return await calculateJwkThumbprint(protectedHeader.jwk!);
  } catch {
    return undefined;
  }
}

test('every algorithm, and the shapes jose accepts (typ spellings, a kid, jwk use/alg) → accepted with jose’s thumbprint', async () => {
  const checker = createDpopProofChecker({ algorithms: ALGORITHMS });
  for (const alg of ALGORITHMS) {
    const key = keyPair(alg);
    const variants = [
      proof(key),
      proof(key, {}, { typ: 'application/dpop+jwt' }),
      proof(key, {}, { typ: 'DPoP+JWT', kid: 'k1' }),
      proof({ ...key, jwk: { ...key.jwk, use: 'sig', alg, kid: 'x' } }),
      proof(key, { exp: Math.floor(Date.now() / 1000) + 60, htu: `${HTU}#fragment` }),
    ];
    for (const [i, value] of variants.entries()) {
      const verdict = checker.check(value, expected);
      assert.equal(verdict.fault, undefined, `${alg} #${i}: ${verdict.fault}`);
      assert.equal(verdict.thumbprint, await joseAnswer(value), `${alg} #${i}`);
      assert.equal(verdict.minimal, i === 0 || i === 4, `${alg} #${i}: minimal (the header's shape)`);
    }
  }
});

test('what jose refuses, and the claims RFC 9449 requires → refused, with the fault named', async () => {
  const checker = createDpopProofChecker({ algorithms: ALGORITHMS });
  const key = keyPair('ES256');
  const other = keyPair('ES256');
  const now = Math.floor(Date.now() / 1000);
  const { d } = key.privateKey.export({ format: 'jwk' }) as { d: string };
  const good = proof(key);
  // [fault, proof, jose accepts it (a rule of RFC 9449 or of the kit beyond jose's)]
  const cases: [string, string, boolean?][] = [
    ['compact', 'a.b'],
    ['malformed', `${good}x`.replace(/\.[^.]*$/, '.+')],
    // Stray bits: the signature's last character (86 characters, 4 unused bits) moved off a multiple of 16,
    // its two bits that count kept: the same bytes to a lenient decoder (jose's), so jose accepts it.
    ['malformed', good.replace(/.$/, (last) => BASE64URL_ALPHABET[BASE64URL_ALPHABET.indexOf(last) | 1]!), true],
    ['malformed', `${good}ABC`],
    ['algorithm', proof(key, {}, { alg: 'HS256' })],
    ['header', proof(key, {}, { typ: 'JWT' })],
    ['header', proof(key, {}, { crit: ['exp'] })],
    ['header', proof({ ...key, jwk: { ...key.jwk, use: 'enc' } })],
    ['header', proof({ ...key, jwk: { ...key.jwk, alg: 'ES384' } })],
    ['header', proof({ ...key, jwk: { ...key.jwk, key_ops: ['sign'] } })],
    ['header', proof({ ...key, jwk: { ...key.jwk, crv: 'P-384' } })],
    ['header', proof(keyPair('RS256', 1024))],
    ['private_key', proof({ ...key, jwk: { ...key.jwk, d } })],
    ['signature', proof({ ...key, jwk: other.jwk })],
    ['time', proof(key, { exp: now - 1 })],
    ['time', proof(key, { nbf: now + 60 })],
    ['htm', proof(key, { htm: 'POST' })],
    ['htu', proof(key, { htu: 'https://api.example/other' })],
    ['iat', proof(key, { iat: now - 301 })],
    ['iat', proof(key, { iat: String(now) })],
    ['jti', proof(key, { jti: '' })],
    ['jti', proof(key, { jti: 'x'.repeat(257) }), true],
    ['ath', proof(key, { ath: 'nope' })],
  ];
  for (const [fault, value, joseAccepts] of cases) {
    assert.equal(checker.check(value, expected).fault, fault, fault);
    assert.equal((await joseAnswer(value)) !== undefined, joseAccepts === true, `jose: ${fault}`);
  }
  assert.equal(checker.check(good, expected).fault, undefined);
});

test('a key or header judged before does not change the next verdict; past maxKeys each is judged afresh', () => {
  const checker = createDpopProofChecker({ algorithms: ['ES256'], maxKeys: 3 });
  const keys = Array.from({ length: 5 }, () => keyPair('ES256'));
  for (const key of [...keys, ...keys]) assert.equal(checker.check(proof(key), expected).fault, undefined);
  // The header of keys[0] (kept), signed by another key.
  assert.equal(checker.check(proof({ ...keys[0]!, privateKey: keys[1]!.privateKey }), expected).fault, 'signature');
  // An algorithm not allowed here is refused even with a valid key for it.
  assert.equal(checker.check(proof(keyPair('Ed25519')), expected).fault, 'algorithm');
});
