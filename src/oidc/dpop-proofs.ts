import { createPublicKey, hash, verify, type KeyObject } from 'node:crypto';

/**
 * A DPoP proof (RFC 9449 §4.3) at the token endpoint, judged as oidc-provider's validateDpop
 * (helpers/validate_dpop.js, through jose's jwtVerify with EmbeddedJWK) judges one, for the proofs
 * clients send: a compact JWS whose protected header is exactly `typ`, `alg` and `jwk`, signed with
 * ES256 (P-256) or Ed25519 (alg `Ed25519` or `EdDSA`), the public key given by exactly its RFC 7638
 * members. What it accepts, oidc-provider accepts, with the same thumbprint. Anything else is not
 * judged here (`unusual`: another shape, algorithm or typ spelling, a `nonce`, `exp` or `nbf` claim),
 * or is a proof oidc-provider refuses (`invalid`); either way oidc-provider answers the request.
 *
 * oidc-provider imports the proof's key with WebCrypto on every request; a client reuses its key, so
 * the key (a node:crypto KeyObject) and its thumbprint are kept here, by the key's RFC 7638 members,
 * and what a header came to by its encoding (a bounded number of each: a header that spends a place
 * costs its sender a signature check it cannot pass without the key).
 */
export type ProofOutcome = { thumbprint: string; jti: string; declined?: undefined } | { declined: 'unusual' | 'nonce' | 'invalid' };

export interface ProofRules {
  /** The algorithms oidc-provider accepts (its resolved `dPoPSigningAlgValues`). */
  algorithms: readonly string[];
  /** The URL `htu` must name once its query and fragment are dropped, as oidc-provider's `urlFor` builds it. */
  endpoint: string;
  /** How far `iat` may be from now, in seconds (oidc-provider's CHALLENGE_OK_WINDOW). */
  iatWindow: number;
}

/** The key type each algorithm needs (jose's check of an embedded JWK against `alg`). */
const KEY_TYPES: Record<string, { kty: string; crv: string; members: readonly string[] }> = {
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  Ed25519: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
};
const HEADER_MEMBERS = ['alg', 'jwk', 'typ'];
/** A 32-byte coordinate or key, base64url without padding. */
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** Keys and headers kept (a client reuses its key; a few hundred clients at most send proofs to one replica at a time). */
const MAX_KEYS = 1000;
/** A header longer than this (a P-256 key's is about 250 characters) is judged but not kept. */
const MAX_KEPT_HEADER = 1024;

const UNUSUAL: ProofOutcome = { declined: 'unusual' };
const NONCE: ProofOutcome = { declined: 'nonce' };
const INVALID: ProofOutcome = { declined: 'invalid' };

// jose's decoding: UTF-8 that must be valid.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64url segment as its encoder writes it (no padding, no stray bits), decoded; else undefined. */
function decodeSegment(segment: string): Buffer | undefined {
  if (!BASE64URL.test(segment)) return undefined;
  const bytes = Buffer.from(segment, 'base64url');
  return bytes.toString('base64url') === segment ? bytes : undefined;
}

/** A JSON object (not an array, not null) in a base64url segment; else undefined. */
function objectIn(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeSegment(segment);
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Exactly these own members, no other. */
function hasExactly(value: Record<string, unknown>, members: readonly string[]): boolean {
  const keys = Object.keys(value);
  return keys.length === members.length && members.every((member) => Object.hasOwn(value, member));
}

interface KnownKey {
  key: KeyObject;
  thumbprint: string;
}

/** A proof header judged before: the key it names, with its algorithm; or what it came to. */
type KnownHeader = (KnownKey & { alg: string }) | { declined: 'unusual' | 'invalid' };

/** A bounded map: past `max` entries, the oldest is dropped. */
function remember<V>(map: Map<string, V>, key: string, value: V): V {
  if (map.size >= MAX_KEYS) map.delete(map.keys().next().value!);
  map.set(key, value);
  return value;
}

export function createDpopProofs(rules: ProofRules) {
  const algorithms = new Set(rules.algorithms);
  const keys = new Map<string, KnownKey>();
  // A client sends the same header (typ, alg, its jwk) with every proof: judged once, by its encoding.
  const headers = new Map<string, KnownHeader>();

  /** The key of a JWK with exactly the members `alg` needs, and its RFC 7638 thumbprint; undefined when it is not one. */
  function keyOf(alg: string, jwk: unknown): KnownKey | 'private' | undefined {
    const type = KEY_TYPES[alg];
    if (!type || typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return undefined;
    const members = jwk as Record<string, unknown>;
    // A private key where a public one belongs: oidc-provider refuses the proof.
    if (members.d !== undefined) return 'private';
    if (!hasExactly(members, type.members) || members.kty !== type.kty || members.crv !== type.crv) return undefined;
    const { x, y } = members;
    if (typeof x !== 'string' || !COORDINATE.test(x) || !decodeSegment(x)) return undefined;
    if (type.kty === 'EC' && (typeof y !== 'string' || !COORDINATE.test(y) || !decodeSegment(y))) return undefined;
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace (JSON.stringify escapes none here).
    const canonical = type.kty === 'EC' ? `{"crv":"${type.crv}","kty":"EC","x":"${x}","y":"${y as string}"}` : `{"crv":"${type.crv}","kty":"OKP","x":"${x}"}`;
    const known = keys.get(canonical);
    if (known) return known;
    let key: KeyObject;
    try {
      key = createPublicKey({ key: JSON.parse(canonical), format: 'jwk' });
    } catch {
      return undefined;
    }
    return remember(keys, canonical, { key, thumbprint: hash('sha256', canonical, 'base64url') });
  }

  /** The protected header: exactly `typ` dpop+jwt, an accepted `alg` and a public key for it. */
  function judgeHeader(encoded: string): KnownHeader {
    const header = objectIn(encoded);
    if (!header || !hasExactly(header, HEADER_MEMBERS) || header.typ !== 'dpop+jwt') return { declined: 'unusual' };
    const { alg } = header;
    if (typeof alg !== 'string' || !algorithms.has(alg)) return { declined: 'unusual' };
    const known = keyOf(alg, header.jwk);
    if (known === 'private') return { declined: 'invalid' };
    return known ? { ...known, alg } : { declined: 'unusual' };
  }

  /** Whether `htu` names the endpoint (oidc-provider drops its query and fragment, then compares the URL). */
  function sameEndpoint(htu: unknown): boolean {
    if (typeof htu !== 'string') return false;
    // The URL as clients write it: nothing to drop, nothing to normalise.
    if (htu === rules.endpoint) return true;
    const url = URL.parse(htu);
    if (!url) return false;
    url.hash = '';
    url.search = '';
    return url.href === rules.endpoint;
  }

  return {
    /** The proof of a `method` request to the endpoint: its key's thumbprint and its `jti`, or why it is not judged here. */
    check(proof: unknown, method: string): ProofOutcome {
      if (typeof proof !== 'string' || !proof) return UNUSUAL;
      const parts = proof.split('.');
      if (parts.length !== 3) return INVALID;
      const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
      const header =
        headers.get(encodedHeader) ??
        (encodedHeader.length > MAX_KEPT_HEADER ? judgeHeader(encodedHeader) : remember(headers, encodedHeader, judgeHeader(encodedHeader)));
      if ('declined' in header) return header.declined === 'invalid' ? INVALID : UNUSUAL;
      const signature = decodeSegment(encodedSignature);
      if (!signature) return UNUSUAL;
      const input = Buffer.from(`${encodedHeader}.${encodedPayload}`);
      const verified =
        header.alg === 'ES256'
          ? signature.length === 64 && verify('sha256', input, { key: header.key, dsaEncoding: 'ieee-p1363' }, signature)
          : verify(null, input, header.key, signature);
      if (!verified) return INVALID;

      const claims = objectIn(encodedPayload);
      if (!claims || claims.exp !== undefined || claims.nbf !== undefined) return UNUSUAL;
      if (claims.nonce !== undefined) return NONCE;
      const { iat, jti } = claims;
      if (typeof iat !== 'number' || !iat || typeof jti !== 'string' || !jti) return INVALID;
      if (Math.abs(Math.floor(Date.now() / 1000) - iat) > rules.iatWindow) return INVALID;
      if (claims.htm !== method || !sameEndpoint(claims.htu)) return INVALID;
      return { thumbprint: header.thumbprint, jti };
    },
  };
}

export type DpopProofs = ReturnType<typeof createDpopProofs>;
