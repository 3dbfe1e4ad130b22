import { constants, createPublicKey, hash, verify, type KeyObject } from 'node:crypto';

/**
 * The check of a DPoP proof (RFC 9449 §4.3) that the server's direct answer and the validator kit
 * share: a compact JWS whose protected header has `typ` dpop+jwt, an allowed asymmetric `alg` and a
 * public `jwk` for it, signed by that key, whose claims name the request's method (`htm`) and URL
 * (`htu`), were issued within the window (`iat`), carry a `jti` and, at a resource server, the access
 * token's hash (`ath`). It accepts what jose's `jwtVerify` with `EmbeddedJWK` accepts (oidc-provider's
 * and formerly the kit's check), with the same RFC 7638 thumbprint; the replay of a `jti` is the
 * caller's to judge.
 *
 * jose imports the embedded key with WebCrypto on every proof; a client reuses its key, so here the key
 * (a node:crypto KeyObject) and its thumbprint are kept by the key's RFC 7638 members, and what a
 * header came to by its encoding: a bounded number of each (a header that spends a place costs its
 * sender a signature check it cannot pass without the key). The signature is checked synchronously
 * with node:crypto.
 */

/** Why a proof is refused (the first failed check, in the order jose and RFC 9449 §4.3 run them). */
export type ProofFault =
  | 'compact' // not three dot-separated segments
  | 'malformed' // segments that are not base64url of JSON objects
  | 'header' // `typ`, `crit`, or a `jwk` that is no key for `alg`
  | 'algorithm' // an `alg` outside the allow-list
  | 'private_key' // private key material in `jwk`
  | 'signature'
  | 'time' // an `exp` passed or an `nbf` ahead (jose's checks of the optional claims)
  | 'htm'
  | 'htu'
  | 'iat'
  | 'jti'
  | 'ath';

export interface CheckedProof {
  fault?: undefined;
  /** The RFC 7638 thumbprint (SHA-256, base64url) of the proof's key. */
  thumbprint: string;
  jti: string;
  iat: number;
  claims: Readonly<Record<string, unknown>>;
  /**
   * The header is exactly `typ` (spelled `dpop+jwt`), `alg` and `jwk`, and the key exactly its RFC 7638
   * members: the shape clients send (the server's direct answer judges only those).
   */
  minimal: boolean;
}

export type ProofVerdict = CheckedProof | { fault: ProofFault };

export interface ProofExpectation {
  /** The request's method. */
  method: string;
  /** The request's URL without query and fragment, normalized (`htuOf`). */
  htu: string;
  /** How far `iat` may be from now, in seconds. */
  windowSeconds: number;
  /** At a resource server: the access token the proof must name (`ath`, RFC 9449 §4.3 point 12). */
  accessToken?: string;
}

/** The key type each algorithm needs, and its RFC 7638 members in lexicographic order. */
const KEY_TYPES: Record<string, { kty: string; crv?: string; members: readonly string[] }> = {
  // A curve's coordinates are exactly 32 bytes (43 base64url characters), as WebCrypto requires.
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  Ed25519: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
  RS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
  PS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
};
/** The algorithms this check can verify (asymmetric only, RFC 9449 §4.2). */
export const DPOP_PROOF_ALGORITHMS: readonly string[] = Object.keys(KEY_TYPES);
// The segments of a compact JWS, decoded as jose decodes them; exported for the server's check of its
// own access-token JWTs too (src/protocol imports nothing, so they live here, with their first user).
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// jose's decoding: UTF-8 that must be valid.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A base64url segment as its encoder writes it, decoded; else undefined: no padding, no length that
 * leaves a lone character, and no stray bits in the last character (2 or 4 unused bits must be zero),
 * which is what encoding the decoded bytes again would show, without encoding them.
 */
export function decodeSegment(segment: string): Buffer | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  const tail = segment.length % 4;
  if (tail === 1) return undefined;
  if (tail !== 0 && (ALPHABET.indexOf(segment[segment.length - 1]!) & (tail === 2 ? 0b1111 : 0b11)) !== 0) return undefined;
  return Buffer.from(segment, 'base64url');
}

/** A JSON object (not an array, not null) in a base64url segment; else undefined. */
export function objectIn(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeSegment(segment);
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
const MINIMAL_HEADER = ['alg', 'jwk', 'typ'];
/** jose's minimum RSA modulus. */
const MIN_RSA_BITS = 2048;
const MAX_JTI_LENGTH = 256;
/** A header longer than this (a P-256 key's is about 250 characters, a 4096-bit RSA key's about 950) is judged but not kept. */
const MAX_KEPT_HEADER = 1024;

/** Exactly these own members, no other. */
function hasExactly(value: Record<string, unknown>, members: readonly string[]): boolean {
  const keys = Object.keys(value);
  return keys.length === members.length && members.every((member) => Object.hasOwn(value, member));
}

/** jose's comparison of `typ` values: case-insensitive, `application/` implied. */
const normalizeTyp = (typ: string) => (typ.includes('/') ? typ.toLowerCase() : `application/${typ.toLowerCase()}`);
const DPOP_TYP = normalizeTyp('dpop+jwt');

/** The URL without query and fragment, normalized (RFC 9449 §4.3 point 9); undefined when it is none. */
export function htuOf(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  const parsed = URL.parse(url);
  if (!parsed) return undefined;
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

interface KnownKey {
  key: KeyObject;
  thumbprint: string;
}

/** A header judged before: its key, algorithm and shape, or its fault. */
type KnownHeader = (KnownKey & { alg: string; minimal: boolean }) | { fault: ProofFault };

/** A bounded map: past `max` entries, the oldest is dropped (also the server's memory of checked access-token JWTs). */
export function remember<V>(map: Map<string, V>, max: number, key: string, value: V): V {
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
  return value;
}

/** The signature check of each algorithm family, synchronous (node:crypto). */
function verified(alg: string, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  try {
    switch (alg) {
      case 'ES256':
        return signature.length === 64 && verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
      case 'RS256':
        return verify('sha256', input, key, signature);
      case 'PS256':
        return verify('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
      default:
        return verify(null, input, key, signature);
    }
  } catch {
    return false;
  }
}

/** An optional NumericDate claim as jose reads it: absent, or a finite number; else undefined (refused). */
function numericDate(claims: Record<string, unknown>, name: string): number | null | undefined {
  const value = claims[name];
  if (value === undefined) return null;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** A proof checker for the allowed `algorithms` (those outside DPOP_PROOF_ALGORITHMS are never accepted), keeping up to `maxKeys` keys and headers. */
export function createDpopProofChecker({ algorithms, maxKeys = 1000 }: { algorithms: readonly string[]; maxKeys?: number }) {
  const allowed = new Set(algorithms.filter((alg) => KEY_TYPES[alg]));
  const keys = new Map<string, KnownKey>();
  const headers = new Map<string, KnownHeader>();

  /** The key of a public JWK for `alg` (jose's EmbeddedJWK rules), with whether it is exactly its RFC 7638 members. */
  function keyOf(alg: string, jwk: Record<string, unknown>): (KnownKey & { minimal: boolean }) | { fault: ProofFault } {
    const type = KEY_TYPES[alg]!;
    if (PRIVATE_MEMBERS.some((member) => jwk[member] !== undefined)) return { fault: 'private_key' };
    if (jwk.kty !== type.kty || (type.crv && jwk.crv !== type.crv)) return { fault: 'header' };
    // What jose refuses beside the key itself.
    if (jwk.use !== undefined && jwk.use !== 'sig') return { fault: 'header' };
    if (jwk.alg !== undefined && jwk.alg !== alg) return { fault: 'header' };
    if (jwk.ext !== undefined && typeof jwk.ext !== 'boolean') return { fault: 'header' };
    const ops = jwk.key_ops;
    if (ops !== undefined && (!Array.isArray(ops) || new Set(ops).size !== ops.length || !ops.includes('verify'))) return { fault: 'header' };
    const values: string[] = [];
    for (const member of type.members) {
      if (member === 'kty' || member === 'crv') continue;
      const value = jwk[member];
      if (typeof value !== 'string' || (type.crv && value.length !== 43) || !decodeSegment(value)) return { fault: 'header' };
      values.push(value);
    }
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace (base64url needs no escaping).
    const canonical =
      type.kty === 'EC'
        ? `{"crv":"${type.crv}","kty":"EC","x":"${values[0]}","y":"${values[1]}"}`
        : type.kty === 'OKP'
          ? `{"crv":"${type.crv}","kty":"OKP","x":"${values[0]}"}`
          : `{"e":"${values[0]}","kty":"RSA","n":"${values[1]}"}`;
    const minimal = hasExactly(jwk, type.members);
    const known = keys.get(canonical);
    if (known) return { ...known, minimal };
    let key: KeyObject;
    try {
      key = createPublicKey({ key: JSON.parse(canonical), format: 'jwk' });
    } catch {
      return { fault: 'header' };
    }
    if (type.kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return { fault: 'header' };
    return { ...remember(keys, maxKeys, canonical, { key, thumbprint: hash('sha256', canonical, 'base64url') }), minimal };
  }

  /** The protected header: `typ` dpop+jwt, an allowed `alg`, no `crit`, and a public key for `alg`. */
  function judgeHeader(encoded: string): KnownHeader {
    const header = objectIn(encoded);
    if (!header) return { fault: 'malformed' };
    const { alg, typ, jwk } = header;
    if (typeof alg !== 'string' || !allowed.has(alg)) return { fault: 'algorithm' };
    if (typeof typ !== 'string' || normalizeTyp(typ) !== DPOP_TYP || header.crit !== undefined || !isObject(jwk)) return { fault: 'header' };
    const key = keyOf(alg, jwk);
    if ('fault' in key) return key;
    return { ...key, alg, minimal: key.minimal && typ === 'dpop+jwt' && hasExactly(header, MINIMAL_HEADER) };
  }

  return {
    /** The proof's verdict for a request as `expected` describes it. */
    check(proof: string, expected: ProofExpectation): ProofVerdict {
      const parts = proof.split('.');
      if (parts.length !== 3) return { fault: 'compact' };
      const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
      const header =
        headers.get(encodedHeader) ??
        (encodedHeader.length > MAX_KEPT_HEADER ? judgeHeader(encodedHeader) : remember(headers, maxKeys, encodedHeader, judgeHeader(encodedHeader)));
      if ('fault' in header) return { fault: header.fault };
      const signature = decodeSegment(encodedSignature);
      if (!signature) return { fault: 'malformed' };
      if (!verified(header.alg, header.key, Buffer.from(proof.slice(0, -encodedSignature.length - 1)), signature)) return { fault: 'signature' };

      const claims = objectIn(encodedPayload);
      if (!claims) return { fault: 'malformed' };
      const now = Math.floor(Date.now() / 1000);
      const exp = numericDate(claims, 'exp');
      const nbf = numericDate(claims, 'nbf');
      if (exp === undefined || nbf === undefined || (exp !== null && exp <= now) || (nbf !== null && nbf > now)) return { fault: 'time' };
      if (claims.htm !== expected.method) return { fault: 'htm' };
      const { htu, iat, jti } = claims;
      if (htu !== expected.htu && htuOf(htu) !== expected.htu) return { fault: 'htu' };
      if (typeof iat !== 'number' || !iat || Math.abs(now - iat) > expected.windowSeconds) return { fault: 'iat' };
      if (typeof jti !== 'string' || !jti || jti.length > MAX_JTI_LENGTH) return { fault: 'jti' };
      if (expected.accessToken !== undefined && claims.ath !== hash('sha256', expected.accessToken, 'base64url')) return { fault: 'ath' };
      return { thumbprint: header.thumbprint, jti, iat, claims, minimal: header.minimal };
    },
  };
}

export type DpopProofChecker = ReturnType<typeof createDpopProofChecker>;
