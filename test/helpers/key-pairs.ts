import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as a JWK (kty, crv, x, y for EC and OKP; kty, n, e for RSA). */
  publicJwk: JsonWebKey;
  /** The private key as a JWK (the public members and d, ...). */
  privateJwk: JsonWebKey;
}

export type KeyPairType = { type: 'ec' } | { type: 'ed25519' } | { type: 'rsa'; modulusLength?: number };

/**
 * A key pair for tests and the benchmark: P-256, Ed25519 or RSA (2048 bits unless said).
 *
 * The only way to make one here. On Node 20 (20.20.2 at least), exporting a key that
 * `generateKeyPairSync` returned can deadlock the process: the export holds the key's mutex while it
 * allocates, a garbage collection then destroys the finished keygen job, whose destructor takes the
 * same mutex. Of 5,000 P-256 pairs made and exported in a row, four runs in six hung for good (Node 22
 * and WebCrypto's generateKey did not). So the pair is exported inside the keygen job, as JWKs, and the
 * KeyObjects handed out are imported from them: no keygen job is ever behind a key that a test exports
 * or signs with. test/key-pairs.test.ts holds this.
 */
export function keyPair(kind: KeyPairType = { type: 'ec' }): KeyPair {
  const encoding = { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } } as const;
  const generated =
    kind.type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256', ...(encoding as object) })
      : kind.type === 'ed25519'
        ? generateKeyPairSync('ed25519', encoding as object)
        : generateKeyPairSync('rsa', { modulusLength: kind.modulusLength ?? 2048, ...(encoding as object) });
  const { publicKey: publicJwk, privateKey: privateJwk } = generated as unknown as { publicKey: JsonWebKey; privateKey: JsonWebKey };
  return {
    privateKey: createPrivateKey({ key: privateJwk, format: 'jwk' }),
    publicKey: createPublicKey({ key: publicJwk, format: 'jwk' }),
    publicJwk,
    privateJwk,
  };
}
