import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type Provider from 'oidc-provider';
import { decodeSegment, objectIn, remember } from '../protocol/dpop-proof.js';

/**
 * Tally's own JWT access tokens (RFC 9068), verified with node:crypto keys kept once per provider.
 * jose's jwtVerify (with a local JWKS) goes through WebCrypto and its promise jobs: about a tenth of an
 * introspection's main-thread time here (`lazyDOMException`, `parseJoseHeader`, `decode` in the
 * profile, bench/ANALYSIS.md). The tokens this server signs have one shape: a protected
 * header of exactly `alg`, `typ: at+jwt` and the `kid` of one of its ES256 or RS256 keys, canonical
 * base64url, numeric `iat` and `exp` and no `nbf`. That shape is judged here as jose judges it; any
 * other (an unknown kid, a key being rotated in, another algorithm or typ spelling, a `crit` header, an
 * odd claim) is `undecided`, and the caller asks jose (token-modes.ts) or oidc-provider (the direct
 * introspection declines).
 */
export type JwtVerdict =
  | { claims: Record<string, unknown>; refused?: undefined; undecided?: undefined }
  /** Not a token of this server's: `forged` when no key of its signed it (jose's signature failure). */
  | { refused: 'forged' | 'issuer' | 'expired'; claims?: undefined; undecided?: undefined }
  | { undecided: true; claims?: undefined; refused?: undefined };

const UNDECIDED: JwtVerdict = Object.freeze({ undecided: true } as const);
const FORGED: JwtVerdict = Object.freeze({ refused: 'forged' } as const);
const ISSUER: JwtVerdict = Object.freeze({ refused: 'issuer' } as const);
const EXPIRED: JwtVerdict = Object.freeze({ refused: 'expired' } as const);

/** The algorithms judged here, with the key each needs (`kty`, and `crv` for EC). */
const ALGORITHMS: Record<string, { kty: string; crv?: string }> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  RS256: { kty: 'RSA' },
};
const HEADER_MEMBERS = 3; // alg, typ, kid
/** Verified JWTs remembered (about 1.5 KB each with their claims: some 3 MB at most), the oldest forgotten first. */
const MAX_REMEMBERED = 2048;

const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

interface VerificationKey {
  alg: string;
  key: KeyObject;
}

function signatureValid({ alg, key }: VerificationKey, input: Buffer, signature: Buffer): boolean {
  try {
    if (alg === 'ES256') return signature.length === 64 && verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
    return verify('sha256', input, key, signature);
  } catch {
    return false; // a signature node:crypto cannot even read (WebCrypto's verify answers false)
  }
}

export function createAccessTokenVerifier(issuer: string, signingKeys: readonly JWK[]) {
  const keys = new Map<string, VerificationKey>();
  const duplicate = new Set<string>();
  for (const jwk of signingKeys) {
    const { kty, crv, x, y, n, e, kid, alg } = jwk;
    const wanted = alg ? ALGORITHMS[alg] : undefined;
    if (typeof kid !== 'string' || !wanted || wanted.kty !== kty || (wanted.crv && wanted.crv !== crv)) continue;
    // Two keys under one kid: jose would try each; left to it.
    if (keys.has(kid)) duplicate.add(kid);
    keys.set(kid, { alg: alg!, key: createPublicKey({ key: { kty, crv, x, y, n, e } as never, format: 'jwk' }) });
  }
  for (const kid of duplicate) keys.delete(kid);

  // The claims of JWTs whose signature was checked (against this provider's keys, which do not change
  // under it: a new key set is a new provider and a new verifier). A resource server introspects the
  // same token again and again; the ES256 check is about 60 µs of its 300. Only the signature is
  // remembered: expiry is checked on every call, and whether the token is active by the caller.
  const signed = new Map<string, Record<string, unknown>>();

  /** The key for a header of the one shape judged here; undefined for any other header. */
  function keyFor(header: Record<string, unknown> | undefined): VerificationKey | undefined {
    if (header?.typ !== 'at+jwt' || typeof header.kid !== 'string' || Object.keys(header).length !== HEADER_MEMBERS) return undefined;
    const key = keys.get(header.kid);
    return key && key.alg === header.alg ? key : undefined;
  }

  /** The parts of a compact JWS, and its key; undefined when this shape is not one judged here. */
  function split(jwt: string) {
    const first = jwt.indexOf('.');
    const second = jwt.indexOf('.', first + 1);
    if (first <= 0 || second <= first + 1 || jwt.indexOf('.', second + 1) !== -1) return undefined;
    const key = keyFor(objectIn(jwt.slice(0, first)));
    return key ? { key, second } : undefined;
  }

  return {
    /** Whether `verify` judges this JWT itself (from its header alone: no signature is checked). */
    decides(jwt: string): boolean {
      return signed.has(jwt) || split(jwt) !== undefined;
    },

    /** The verdict on a JWT access token: its claims when this server signed it and it is in date. */
    verify(jwt: string): JwtVerdict {
      let claims = signed.get(jwt);
      if (!claims) {
        const parts = split(jwt);
        if (!parts) return UNDECIDED;
        const { key, second } = parts;
        const signature = decodeSegment(jwt.slice(second + 1));
        if (!signature) return UNDECIDED;
        if (!signatureValid(key, Buffer.from(jwt.slice(0, second), 'ascii'), signature)) return FORGED;
        claims = objectIn(jwt.slice(jwt.indexOf('.') + 1, second));
        if (!claims || !finite(claims.exp) || !finite(claims.iat) || claims.nbf !== undefined) return UNDECIDED;
        if (claims.iss !== issuer) return ISSUER;
        remember(signed, MAX_REMEMBERED, jwt, Object.freeze(claims));
      }
      // jose's check, on every call: expired when exp <= now (whole seconds, no tolerance).
      if ((claims.exp as number) <= Math.floor(Date.now() / 1000)) return EXPIRED;
      return { claims };
    },
  };
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;

const verifiers = new WeakMap<Provider, AccessTokenVerifier>();

/** Records the verifier of a provider's JWT access tokens (token-modes.ts). */
export function attachAccessTokenVerifier(provider: Provider, verifier: AccessTokenVerifier): void {
  verifiers.set(provider, verifier);
}

/** The verifier a provider's JWT lookup uses, for the direct introspection to ask what it decides; undefined if none. */
export function accessTokenVerifierOf(provider: Provider): AccessTokenVerifier | undefined {
  return verifiers.get(provider);
}
