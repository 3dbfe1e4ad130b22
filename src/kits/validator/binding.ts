import { X509Certificate } from 'node:crypto';
import { sha256 } from '../shared/sha256.js';
import { createDpopProofChecker, htuOf, type ProofFault } from '../../protocol/dpop-proof.js';
import type { ProofReplay } from './proof-replay.js';

// Sender-constrained tokens at the resource server: DPoP (RFC 9449 §4.3, §7) and mutual-TLS
// certificate binding (RFC 8705 §3). The token's validation result (cached or not) carries its `cnf`;
// the request's proof or certificate is checked against it on every request.

/** The proof algorithms accepted (asymmetric only, RFC 9449 §4.2), as the `algs` of the DPoP challenge names them. */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];

const MAX_PROOF_LENGTH = 8192;

/** How the token was presented. Neither member: a Bearer token (RFC 6750) without a client certificate. */
export interface Presentation {
  /** The token came with the `DPoP` scheme: the request's `DPoP` header, its method and its URL as the client saw it. */
  dpop?: { proof: string; method: string; url: string };
  /** The client's TLS certificate (its DER bytes, or an X509Certificate), for certificate-bound tokens (RFC 8705). */
  certificate?: Uint8Array | X509Certificate;
}

/** Why a presentation is refused, as the RFC 9449 §7.1 / RFC 6750 §3.1 challenge names it. */
export interface BindingRefusal {
  error: 'invalid_token' | 'invalid_dpop_proof';
  description: string;
}

/** RFC 8705 §3.1: base64url(SHA-256(DER)) of a certificate. */
export function certificateThumbprint(certificate: Uint8Array | X509Certificate): string {
  return sha256(certificate instanceof X509Certificate ? certificate.raw : certificate);
}

/** The DER of an RFC 9440 `Client-Cert` header (a structured-field byte sequence, `:base64:`), or undefined. */
export function certificateFromHeader(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(value.trim());
  if (!match) return undefined;
  const der = Buffer.from(match[1]!, 'base64');
  try {
    new X509Certificate(der);
    return der;
  } catch {
    return undefined;
  }
}

const badProof = (description: string): BindingRefusal => ({ error: 'invalid_dpop_proof', description });

const NOT_SIGNED = 'the DPoP proof is not a valid dpop+jwt signed by the key in its header';
/** The refusal of each fault of the shared proof check. */
const REFUSALS: Record<ProofFault, string> = {
  compact: NOT_SIGNED,
  malformed: NOT_SIGNED,
  header: NOT_SIGNED,
  algorithm: NOT_SIGNED,
  signature: NOT_SIGNED,
  time: NOT_SIGNED,
  private_key: 'the DPoP proof header holds private key material',
  htm: 'the DPoP proof is for another HTTP method',
  htu: 'the DPoP proof is for another URL',
  iat: 'the DPoP proof is too old or from the future',
  jti: 'the DPoP proof has no jti',
  ath: 'the DPoP proof is not for this access token',
};

/** The kit's proof checks (protocol/dpop-proof.ts): keys kept by thumbprint, signatures checked with node:crypto. */
const proofs = createDpopProofChecker({ algorithms: DPOP_ALGORITHMS });

/**
 * The proof's own checks (RFC 9449 §4.3): a `dpop+jwt` JWS with an asymmetric algorithm, signed by the
 * public `jwk` of its header, for this method and URL, issued within `windowSeconds` of now, carrying
 * a `jti` and the access token's hash. Returns the key's thumbprint and the `jti`, or why it is refused.
 */
function verifyProof(dpop: NonNullable<Presentation['dpop']>, accessToken: string, windowSeconds: number) {
  const { proof } = dpop;
  if (typeof proof !== 'string' || proof.length === 0 || proof.length > MAX_PROOF_LENGTH || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(proof))
    return badProof('a single DPoP proof is required');
  const htu = htuOf(dpop.url);
  if (htu === undefined) return badProof(REFUSALS.htu);
  const verdict = proofs.check(proof, { method: dpop.method, htu, windowSeconds, accessToken });
  if (verdict.fault) return badProof(REFUSALS[verdict.fault]);
  return { jkt: verdict.thumbprint, jti: verdict.jti, iat: verdict.iat };
}

/**
 * Whether the token, with the confirmation `cnf` of its validation result, may be used as presented:
 * a DPoP-bound token (`cnf.jkt`) only with the DPoP scheme and a valid proof by that key, an unbound
 * token only as a Bearer token, a certificate-bound token (`cnf["x5t#S256"]`) only with that
 * certificate. The proof's `jti` is recorded last, once everything else passed.
 */
export async function checkBinding(
  result: { cnf?: unknown; token_type?: unknown },
  accessToken: string,
  presentation: Presentation,
  dpop: { windowSeconds: number; replay: ProofReplay },
): Promise<BindingRefusal | undefined> {
  const confirmation = (result.cnf && typeof result.cnf === 'object' ? result.cnf : {}) as Record<string, unknown>;
  // A token the issuer calls DPoP-bound but whose key it does not name can be used by nobody.
  const jkt = confirmation.jkt ?? (typeof result.token_type === 'string' && result.token_type.toLowerCase() === 'dpop' ? null : undefined);
  const x5t = confirmation['x5t#S256'];
  let used: { jkt: string; jti: string; iat: number } | undefined;
  if (presentation.dpop) {
    if (jkt === undefined) return { error: 'invalid_token', description: 'the access token is not DPoP-bound: present it as a Bearer token' };
    const proof = verifyProof(presentation.dpop, accessToken, dpop.windowSeconds);
    if ('error' in proof) return proof;
    if (proof.jkt !== jkt) return { error: 'invalid_token', description: 'the DPoP proof is signed by another key than the token is bound to' };
    used = proof;
  } else if (jkt !== undefined) {
    return { error: 'invalid_token', description: 'the access token is DPoP-bound: present it with the DPoP scheme and a proof' };
  }
  if (x5t !== undefined && (!presentation.certificate || certificateThumbprint(presentation.certificate) !== x5t))
    return { error: 'invalid_token', description: 'the access token is bound to another client certificate' };
  if (used) {
    // Kept until the proof's window has passed (its iat may lie up to the window ahead).
    const ttlMs = (used.iat + dpop.windowSeconds) * 1000 - Date.now() + 1000;
    if (!(await dpop.replay.firstUse(sha256(`${used.jkt}:${used.jti}`), ttlMs))) return badProof('the DPoP proof was already used');
  }
  return undefined;
}
