import type { Provider } from 'oidc-provider';
import { sha256 } from '../lib/crypto.js';
import { verifySecret } from '../storage/passwords.js';
import { createCacheStats, type CacheStats } from '../lib/cache-stats.js';
import { replaceClientSecretComparison } from './internals/index.js';

const CACHE_TTL_MS = 5 * 60_000;
const CACHE_MAX = 10_000;

/**
 * Client secrets are stored as argon2id hashes. Verified credentials are remembered for a few minutes,
 * keyed by client, stored hash and a SHA-256 of the presented secret: the token endpoint then skips
 * argon2, and a rotated secret (a new stored hash) misses the cache at once, in every replica.
 * Failures are never remembered. One cache serves every provider a server builds (key rotation).
 */
export function createVerifiedSecrets(stats: CacheStats = createCacheStats()) {
  const verified = new Map<string, number>();
  // The stored value is an argon2 hash already; the presented secret is kept only as its SHA-256.
  const keyOf = (clientId: string, stored: string, actual: string) => `${clientId}\0${stored}\0${sha256(actual)}`;

  /** True (a hit) when the key was verified within the last few minutes. */
  function known(key: string): boolean {
    const until = verified.get(key);
    if (until === undefined || until <= Date.now()) return false;
    stats.hits++;
    return true;
  }

  return {
    /** True (a hit) when this secret was verified against this stored hash within the last few minutes. */
    isKnown: (clientId: string, stored: string, actual: string) => known(keyOf(clientId, stored, actual)),
    async verify(clientId: string, stored: string, actual: string): Promise<boolean> {
      const key = keyOf(clientId, stored, actual);
      if (known(key)) return true;
      stats.misses++;
      if (!(await verifySecret(stored, actual))) return false;
      if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!);
      verified.set(key, Date.now() + CACHE_TTL_MS);
      return true;
    },
  };
}

export type VerifiedSecrets = ReturnType<typeof createVerifiedSecrets>;

/** oidc-provider compares `client_secret` as plain text; here it holds the argon2 hash (see above). */
export function installHashedClientSecrets(provider: Provider, secrets: VerifiedSecrets): void {
  // A stored value that is no argon2 hash is left to oidc-provider's own comparison.
  replaceClientSecretComparison(provider, (clientId, stored, actual) => (stored?.startsWith('$argon2') ? secrets.verify(clientId, stored, actual) : undefined));
}
