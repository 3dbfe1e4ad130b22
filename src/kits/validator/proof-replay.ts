import type { Redis } from 'ioredis';

/**
 * Which DPoP proofs were already used (RFC 9449 §11.1): a proof is accepted once. Each `jti` is kept
 * for as long as its proof could still be accepted (the `iat` window), then forgotten.
 */
export interface ProofReplay {
  /** True the first time `key` is seen within `ttlMs`; false for a replay. */
  firstUse(key: string, ttlMs: number): Promise<boolean>;
}

/** Past this many remembered proofs the expired ones are swept on the next insertion. */
const SWEEP_AT = 50_000;

export function createMemoryProofReplay(): ProofReplay {
  const seen = new Map<string, number>();
  return {
    async firstUse(key, ttlMs) {
      const now = Date.now();
      const until = seen.get(key);
      if (until !== undefined && until > now) return false;
      if (seen.size >= SWEEP_AT) for (const [k, at] of seen) if (at <= now) seen.delete(k);
      seen.set(key, now + ttlMs);
      return true;
    },
  };
}

/**
 * Shared by every validator on one Redis: `SET NX PX`, so that a proof replayed against another
 * process is refused too. The process's own memory is asked first (a replay on the same process costs
 * no round trip) and stays the answer while Redis does not answer: the API keeps serving, with replays
 * then caught per process only.
 */
export function createSharedProofReplay(redis: Redis, prefix: string, memory: ProofReplay, onUnavailable: () => void): ProofReplay {
  return {
    async firstUse(key, ttlMs) {
      if (!(await memory.firstUse(key, ttlMs))) return false;
      try {
        return (await redis.set(`${prefix}p:${key}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
      } catch {
        onUnavailable();
        return true;
      }
    },
  };
}
