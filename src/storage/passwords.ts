import { availableParallelism } from 'node:os';
import argon2 from 'argon2';
import { createLimiter } from '../lib/limiter.js';

// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): about 30 ms a hash here.
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

// argon2 runs on libuv's thread pool (4 threads), which also signs JWTs (WebCrypto). One hash per
// core at most: a burst of logins then neither starves token signing nor holds 19 MiB per thread.
const oneHashPerCore = createLimiter(Math.max(1, Math.min(availableParallelism(), 4)));

export function hashSecret(plain: string): Promise<string> {
  return oneHashPerCore(() => argon2.hash(plain, ARGON2_OPTIONS));
}

export async function verifySecret(hash: string, plain: string): Promise<boolean> {
  try {
    return await oneHashPerCore(() => argon2.verify(hash, plain));
  } catch {
    return false;
  }
}

// A hash of a random password, verified against when a user does not exist so that
// a login answers in the same time either way.
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashSecret('decoy-password-that-matches-nothing');
  return decoy;
}
