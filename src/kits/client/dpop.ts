import { randomBytes, webcrypto } from 'node:crypto';
import { sha256 } from '../shared/sha256.js';

const { subtle } = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
export type JsonWebKey = webcrypto.JsonWebKey;

/** The proof algorithms the client kit signs with (both are in oidc-provider's default `dPoPSigningAlgValues`). */
export type DpopAlgorithm = 'ES256' | 'EdDSA';

const ALGORITHMS = {
  ES256: { generate: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' }, required: ['crv', 'kty', 'x', 'y'] },
  EdDSA: { generate: { name: 'Ed25519' }, sign: { name: 'Ed25519' }, required: ['crv', 'kty', 'x'] },
} as const;

/** A DPoP key pair: the private key signs, `jwk` (public) goes in every proof, `jkt` is its RFC 7638 thumbprint. */
export interface DpopKey {
  alg: DpopAlgorithm;
  privateKey: CryptoKey;
  jwk: JsonWebKey;
  jkt: string;
  /** The private JWK, kept only for a key that is shared (sealed) through Redis; undefined otherwise. */
  exported?: JsonWebKey;
}

/** RFC 7638: SHA-256 of the required members in lexicographic order, base64url. */
function thumbprint(jwk: JsonWebKey, alg: DpopAlgorithm): string {
  const members = Object.fromEntries(ALGORITHMS[alg].required.map((name) => [name, jwk[name as keyof JsonWebKey]]));
  return sha256(JSON.stringify(members));
}

function publicPart(jwk: JsonWebKey, alg: DpopAlgorithm): JsonWebKey {
  return Object.fromEntries(ALGORITHMS[alg].required.map((name) => [name, jwk[name as keyof JsonWebKey]])) as JsonWebKey;
}

/**
 * A new key pair. The private key is non-extractable unless it must be shared (`exportable`, when the
 * token is shared through Redis: the other processes must sign with the key the shared token is bound to).
 */
export async function generateDpopKey(alg: DpopAlgorithm, exportable: boolean): Promise<DpopKey> {
  const pair = (await subtle.generateKey(ALGORITHMS[alg].generate, exportable, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const jwk = publicPart(await subtle.exportKey('jwk', pair.publicKey), alg); // a public key is always extractable
  const exported = exportable ? await subtle.exportKey('jwk', pair.privateKey) : undefined;
  return { alg, privateKey: pair.privateKey, jwk, jkt: thumbprint(jwk, alg), ...(exported ? { exported } : {}) };
}

/** A key pair read back from a shared entry; undefined when it is not a private key of this algorithm. */
export async function importDpopKey(alg: DpopAlgorithm, exported: unknown): Promise<DpopKey | undefined> {
  if (typeof exported !== 'object' || exported === null) return undefined;
  const jwk = exported as JsonWebKey;
  if (typeof jwk.d !== 'string' || !ALGORITHMS[alg].required.every((name) => typeof jwk[name as keyof JsonWebKey] === 'string')) return undefined;
  try {
    const { key_ops: _ops, ext: _ext, ...material } = jwk;
    const privateKey = await subtle.importKey('jwk', material, ALGORITHMS[alg].generate, false, ['sign']);
    const publicJwk = publicPart(jwk, alg);
    return { alg, privateKey, jwk: publicJwk, jkt: thumbprint(publicJwk, alg), exported: jwk };
  } catch {
    return undefined;
  }
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** `htu`: the URL without its query and fragment (RFC 9449 §4.2). */
export function proofTarget(url: string | URL): string {
  const target = new URL(url);
  target.search = '';
  target.hash = '';
  return target.href;
}

/** fetch() upper-cases these methods and sends any other as given; `htm` must be what is sent. */
const NORMALISED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
export const requestMethod = (method: string | undefined) =>
  method === undefined ? 'GET' : NORMALISED_METHODS.has(method.toUpperCase()) ? method.toUpperCase() : method;

/** A DPoP proof JWT (RFC 9449 §4.2) for one request; `accessToken` adds `ath`, `nonce` the server's nonce. */
export async function signDpopProof(
  key: DpopKey,
  request: { method: string; url: string | URL; accessToken?: string | undefined; nonce?: string | undefined },
): Promise<string> {
  const header = { typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk };
  const payload = {
    jti: randomBytes(16).toString('base64url'),
    htm: request.method,
    htu: proofTarget(request.url),
    iat: Math.floor(Date.now() / 1000),
    ...(request.accessToken !== undefined ? { ath: sha256(request.accessToken) } : {}),
    ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
  };
  const input = `${encode(header)}.${encode(payload)}`;
  const signature = await subtle.sign(ALGORITHMS[key.alg].sign, key.privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

/** Whether a 401's `WWW-Authenticate` is the DPoP scheme's `use_dpop_nonce` challenge (RFC 9449 §9). */
export function asksForNonce(wwwAuthenticate: string | null): boolean {
  return !!wwwAuthenticate && /(^|,)\s*DPoP\b[\s\S]*?\berror\s*=\s*"?use_dpop_nonce"?/i.test(wwwAuthenticate);
}

/** The latest `DPoP-Nonce` each origin gave (RFC 9449 §8.2: a server may send a new one on any answer). */
export function createNonceBook() {
  const nonces = new Map<string, string>();
  return {
    get: (url: string | URL) => nonces.get(new URL(url).origin),
    /** Keeps the response's `DPoP-Nonce`, if it has one; whether it had one. */
    remember(url: string | URL, response: Response): boolean {
      const nonce = response.headers.get('dpop-nonce');
      if (!nonce) return false;
      nonces.set(new URL(url).origin, nonce);
      if (nonces.size > 100) nonces.delete(nonces.keys().next().value!); // a bound on what strangers' answers can make us keep
      return true;
    },
    set: (url: string | URL, nonce: string) => nonces.set(new URL(url).origin, nonce),
  };
}
