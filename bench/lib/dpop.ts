import { createHash, randomUUID, sign, type KeyObject } from 'node:crypto';
import { keyPair } from '../../test/helpers/key-pairs.ts';

/**
 * DPoP proofs (RFC 9449) for the load generator, signed synchronously with node:crypto: autocannon
 * builds each request in a synchronous callback, and every request needs a fresh `jti`.
 */
export interface ProofMaker {
  /** The RFC 7638 thumbprint of the public key, as a bound token's `cnf.jkt` holds it. */
  thumbprint: string;
  proof(method: string, url: string, accessToken?: string): string;
}

const b64 = (value: Buffer | string) => Buffer.from(value).toString('base64url');

export function createProofMaker(): ProofMaker {
  const { privateKey, publicJwk } = keyPair();
  const { x, y } = publicJwk as { x: string; y: string };
  const jwk = { crv: 'P-256', kty: 'EC', x, y };
  const header = b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk }));
  return {
    thumbprint: b64(createHash('sha256').update(JSON.stringify(jwk)).digest()),
    proof(method, url, accessToken) {
      const claims = {
        htm: method,
        htu: url,
        iat: Math.floor(Date.now() / 1000),
        jti: randomUUID(),
        ...(accessToken ? { ath: b64(createHash('sha256').update(accessToken).digest()) } : {}),
      };
      const input = `${header}.${b64(JSON.stringify(claims))}`;
      return `${input}.${b64(signEs256(privateKey, input))}`;
    },
  };
}

function signEs256(key: KeyObject, input: string): Buffer {
  return sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
}

/**
 * Proofs for one method and URL signed before each run (`fill`), each taken once (`take`; signed on the
 * spot once the pool runs out). Signed per request, the proofs paced the load generator (one process
 * signing ES256 beside autocannon): the DPoP runs offered the server a fifth of the plain runs' rate,
 * and a server answering fewer requests per turn costs more CPU per request, so the ratio compared two
 * rates, not DPoP with plain. A proof stays valid for minutes (its `iat` window), far longer than a run.
 */
export function createProofPool(maker: ProofMaker, method: string, url: string) {
  let proofs: string[] = [];
  let next = 0;
  return {
    fill(count: number): void {
      proofs = Array.from({ length: count }, () => maker.proof(method, url));
      next = 0;
    },
    take(): string {
      return next < proofs.length ? proofs[next++]! : maker.proof(method, url);
    },
  };
}
