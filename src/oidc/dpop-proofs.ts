import { createDpopProofChecker, type ProofFault } from '../protocol/dpop-proof.js';

/**
 * A DPoP proof (RFC 9449 §4.3) at the token endpoint, judged as oidc-provider's validateDpop
 * (helpers/validate_dpop.js, through jose's jwtVerify with EmbeddedJWK) judges one, for the proofs
 * clients send: the shared check (protocol/dpop-proof.ts, which accepts what jose accepts, with the
 * same thumbprint) on a proof whose protected header is exactly `typ`, `alg` and `jwk`, signed with
 * ES256 (P-256) or Ed25519 (alg `Ed25519` or `EdDSA`), the public key given by exactly its RFC 7638
 * members. Anything else is not judged here (`unusual`: another shape, algorithm or typ spelling, a
 * `nonce`, `exp` or `nbf` claim), or is a proof oidc-provider refuses (`invalid`); either way
 * oidc-provider answers the request.
 */
export type ProofOutcome = { thumbprint: string; jti: string; iat: number; declined?: undefined } | { declined: 'unusual' | 'nonce' | 'invalid' };

export interface ProofRules {
  /** The algorithms oidc-provider accepts (its resolved `dPoPSigningAlgValues`). */
  algorithms: readonly string[];
  /** The URL `htu` must name once its query and fragment are dropped, as oidc-provider's `urlFor` builds it. */
  endpoint: string;
  /** How far `iat` may be from now, in seconds (oidc-provider's CHALLENGE_OK_WINDOW). */
  iatWindow: number;
}

/** The algorithms judged here; RSA proofs are oidc-provider's. */
const JUDGED = new Set(['ES256', 'Ed25519', 'EdDSA']);

const UNUSUAL: ProofOutcome = { declined: 'unusual' };
const NONCE: ProofOutcome = { declined: 'nonce' };
const INVALID: ProofOutcome = { declined: 'invalid' };

/** What oidc-provider answers a proof with each fault: refused (`invalid_dpop_proof`), or a shape it is left to judge. */
const OUTCOMES: Record<ProofFault, ProofOutcome> = {
  compact: INVALID,
  malformed: UNUSUAL,
  header: UNUSUAL,
  algorithm: UNUSUAL,
  private_key: INVALID,
  signature: INVALID,
  time: UNUSUAL,
  htm: INVALID,
  htu: INVALID,
  iat: INVALID,
  jti: INVALID,
  ath: INVALID,
};

export function createDpopProofs(rules: ProofRules) {
  const checker = createDpopProofChecker({ algorithms: rules.algorithms.filter((alg) => JUDGED.has(alg)) });

  return {
    /** The proof of a `method` request to the endpoint: its key's thumbprint, `jti` and `iat`, or why it is not judged here. */
    check(proof: unknown, method: string): ProofOutcome {
      if (typeof proof !== 'string' || !proof) return UNUSUAL;
      const verdict = checker.check(proof, { method, htu: rules.endpoint, windowSeconds: rules.iatWindow });
      if (verdict.fault) return OUTCOMES[verdict.fault];
      const { claims } = verdict;
      if (!verdict.minimal || claims.exp !== undefined || claims.nbf !== undefined) return UNUSUAL;
      if (claims.nonce !== undefined) return NONCE;
      return { thumbprint: verdict.thumbprint, jti: verdict.jti, iat: verdict.iat };
    },
  };
}

export type DpopProofs = ReturnType<typeof createDpopProofs>;
