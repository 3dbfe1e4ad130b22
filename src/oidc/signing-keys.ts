import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { ExternalSigningKey } from 'oidc-provider';

/**
 * A signing key that signs with node:crypto directly. oidc-provider would sign through jose and
 * WebCrypto, whose JavaScript around each job costs the main thread about 120 µs per ES256 and 200 µs
 * per RS256 signature here. ES256 signs on the calling thread (about 70 µs in all, against 170 µs of
 * CPU for WebCrypto's route); RS256, a millisecond of CPU, on libuv's thread pool as before, for about
 * 130 µs of the main thread. The JWS is the same: P1363 r||s for ECDSA, as RFC 7518 requires.
 */
class NodeSigningKey extends ExternalSigningKey {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  #kid: string;
  #alg: SupportedAlg;

  constructor(jwk: JWK & { kid: string; alg: SupportedAlg }) {
    super();
    this.#privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
    this.#publicKey = createPublicKey(this.#privateKey);
    this.#kid = jwk.kid;
    this.#alg = jwk.alg;
  }

  override get kid(): string {
    return this.#kid;
  }

  override set kid(value: string) {
    this.#kid = value;
  }

  override get alg(): string {
    return this.#alg;
  }

  override set alg(value: string) {
    // oidc-provider only ever sets the algorithm the key already has.
    if (value !== this.#alg) throw new TypeError(`this key signs ${this.#alg}, not ${value}`);
  }

  override keyObject(): KeyObject {
    return this.#publicKey;
  }

  override sign(data: Uint8Array): Uint8Array | Promise<Uint8Array> {
    if (this.#alg === 'ES256') return sign('sha256', data, { key: this.#privateKey, dsaEncoding: 'ieee-p1363' });
    return new Promise((resolve, reject) => sign('sha256', data, this.#privateKey, (error, signature) => (error ? reject(error) : resolve(signature))));
  }
}

type SupportedAlg = 'ES256' | 'RS256';

function isSupported(jwk: JWK): jwk is JWK & { kid: string; alg: SupportedAlg } {
  if (typeof jwk.kid !== 'string' || typeof jwk.d !== 'string') return false;
  if (jwk.alg === 'ES256') return jwk.kty === 'EC' && jwk.crv === 'P-256';
  return jwk.alg === 'RS256' && jwk.kty === 'RSA';
}

/** The keys to hand oidc-provider (`jwks.keys`): ES256 and RS256 keys sign with node:crypto, any other stays a JWK. */
export function providerSigningKeys(jwks: readonly JWK[]): (JWK | ExternalSigningKey)[] {
  return jwks.map((jwk) => (isSupported(jwk) ? new NodeSigningKey(jwk) : jwk));
}

/** oidc-provider's switch for `ExternalSigningKey` entries (an experimental feature, acknowledged). */
export const EXTERNAL_SIGNING_FEATURE = { enabled: true, ack: 'experimental-01' } as const;
