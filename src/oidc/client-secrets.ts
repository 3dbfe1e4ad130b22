import type { Provider } from 'oidc-provider';
import { sha256 } from '../lib/crypto.js';
import { verifySecret } from '../storage/passwords.js';
import { createCacheStats, type CacheStats } from '../lib/cache-stats.js';

const CACHE_TTL_MS = 5 * 60_000;
const CACHE_MAX = 10_000;

/**
 * Client secrets are stored as argon2id hashes (in `client_secret`, as oidc-provider requires one
 * there). Verified credentials are remembered for a few minutes, keyed by client, stored hash and a
 * SHA-256 of the presented secret: the token endpoint then skips argon2, and a rotated secret (a new
 * stored hash) misses the cache at once, in every replica. Failures are never cached.
 */
export function installHashedClientSecrets(provider: Provider, stats: CacheStats = createCacheStats()): void {
  const verified = new Map<string, number>();
  const ClientClass = provider.Client as unknown as { prototype: { compareClientSecret(this: { clientId: string; clientSecret?: string }, actual: string): Promise<boolean> } };
  const original = ClientClass.prototype.compareClientSecret;

  ClientClass.prototype.compareClientSecret = async function compareClientSecret(actual: string) {
    const stored = this.clientSecret;
    if (!stored?.startsWith('$argon2')) return original.call(this, actual);
    const key = `${this.clientId}\0${sha256(stored)}\0${sha256(actual)}`;
    const until = verified.get(key);
    if (until !== undefined && until > Date.now()) {
      stats.hits++;
      return true;
    }
    stats.misses++;
    if (!(await verifySecret(stored, actual))) return false;
    if (verified.size >= CACHE_MAX) verified.delete(verified.keys().next().value!);
    verified.set(key, Date.now() + CACHE_TTL_MS);
    return true;
  };
}
