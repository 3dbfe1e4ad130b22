import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { createLimiter } from '../lib/limiter.js';

// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): about 30 ms a hash here.
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

// argon2 runs on libuv's thread pool (4 threads), which also signs JWTs (WebCrypto). Two bounded queues
// share it, so that neither can starve the other: passwords (sign-in, setting a password) at most one
// hash per core up to three, and client secrets still stored as argon2 hashes (clients registered
// before HMAC secrets; see storage/client-secrets.ts) one at a time. Beyond a bound of waiting work a
// request is refused at once (Overloaded, a 503 with Retry-After) instead of queueing behind a flood.
const passwordWork = createLimiter(Math.max(1, Math.min(availableParallelism(), 3)), { maxWaiting: 64, name: 'sign_in' });
const clientAuthWork = createLimiter(1, { maxWaiting: 8, name: 'client_auth' });

export function hashSecret(plain: string): Promise<string> {
  return passwordWork(() => argon2.hash(plain, ARGON2_OPTIONS));
}

/** A password against its argon2 hash; throws Overloaded when too many wait already. */
export function verifySecret(hash: string, plain: string): Promise<boolean> {
  return passwordWork(() => argon2.verify(hash, plain).catch(() => false));
}

/** A client secret against a legacy argon2 hash, under client authentication's own bound (Overloaded beyond it). */
export function verifyArgon2ClientSecret(hash: string, plain: string): Promise<boolean> {
  return clientAuthWork(() => argon2.verify(hash, plain).catch(() => false));
}

/** Whether a stored hash is argon2's (`$argon2id$...`). */
export const isArgon2Hash = (stored: string): boolean => stored.startsWith('$argon2');

// A hash of a random password, verified against when a user does not exist so that
// a login answers in the same time either way.
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  // A refusal (Overloaded) is not kept: the next login makes the hash.
  decoy ??= hashSecret('decoy-password-that-matches-nothing').catch((error: unknown) => {
    decoy = undefined;
    throw error;
  });
  return decoy;
}
