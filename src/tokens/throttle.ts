import { sha256 } from '../lib/crypto.js';
import type { ThrottleCount, ThrottleCounterStore } from '../storage/throttle-counters.js';

/**
 * Throttling of guessing, the one rule: failures are counted per policy and subject (an account, a
 * client IP) in the shared store, so that every replica and a restarted process see the same counts;
 * once a policy's threshold is reached, attempts are refused (even right ones) until a delay passes.
 *
 * A policy's refusal lasts either until its window ends (a fixed window from the first failure), or,
 * with `delay`, `baseSeconds` doubled for each failure beyond the threshold (capped at `maxSeconds`)
 * from the latest failure. Refused attempts are not failures: they are not counted.
 */
export interface ThrottlePolicy {
  /** Names the policy's keys (and the throttle in logs). */
  name: string;
  /** Attempts are refused once this many failures are counted. */
  threshold: number;
  /** How long failures are remembered: from the first (fixed window) or, when `sliding`, from the latest. */
  windowSeconds: number;
  sliding: boolean;
  /** A doubling delay from the latest failure instead of the rest of the window. */
  delay?: { baseSeconds: number; maxSeconds: number };
}

/** The contract's policies (CONTRACT.md, "Interactive login and consent"). */
export const THROTTLE_POLICIES = {
  /**
   * Per username as typed (known or not, so that the answer is the same): after 5 consecutive
   * failures, refused for 1 s, then 2 s, 4 s … up to 15 minutes after each further failure. A
   * success clears the count; so does 24 hours without a failure.
   */
  account: { name: 'account', threshold: 5, windowSeconds: 24 * 3600, sliding: true, delay: { baseSeconds: 1, maxSeconds: 15 * 60 } },
  /** Per client IP across accounts (password spraying): beyond 20 failures within 15 minutes, refused for the rest of the 15 minutes. */
  address: { name: 'address', threshold: 21, windowSeconds: 15 * 60, sliding: false },
  /** Device user_code guesses per client IP: 10 wrong codes within 15 minutes, then refused for the rest of the 15 minutes. */
  userCode: { name: 'user_code', threshold: 10, windowSeconds: 15 * 60, sliding: false },
  /**
   * Wrong one-time codes (TOTP or recovery) per account, after a right password: as `account`, after 5
   * consecutive wrong codes refused for 1 s, 2 s, 4 s … up to 15 minutes; a right code clears the count.
   */
  secondFactor: { name: 'second_factor', threshold: 5, windowSeconds: 24 * 3600, sliding: true, delay: { baseSeconds: 1, maxSeconds: 15 * 60 } },
  // Failed client authentications of one client_id from one client IP: beyond 10 in 15 minutes, refused
  // for the rest of the window (even with the right secret), so a client secret cannot be guessed there.
  clientAuth: { name: 'client_auth', threshold: 10, windowSeconds: 15 * 60, sliding: false },
} as const satisfies Record<string, ThrottlePolicy>;

export interface ThrottleVerdict {
  /** Whether an attempt may be made now. */
  allowed: boolean;
  /** When not allowed: the seconds until it is (at least 1); 0 otherwise. */
  retryAfterSeconds: number;
  /** Failures counted so far. */
  failures: number;
}

export interface Throttle {
  /** May `subject` attempt now under `policy`? */
  check(policy: ThrottlePolicy, subject: string): Promise<ThrottleVerdict>;
  /** Counts a failure; the verdict after it (not allowed: this failure began a refusal). */
  fail(policy: ThrottlePolicy, subject: string): Promise<ThrottleVerdict>;
  /** Forgets the subject's failures (a success, an operator's unlock). */
  clear(policy: ThrottlePolicy, subject: string): Promise<void>;
}

const ALLOWED = (failures: number): ThrottleVerdict => ({ allowed: true, retryAfterSeconds: 0, failures });

/** When a count refuses attempts until (ms since the epoch), or undefined when it does not. */
function refusedUntil(policy: ThrottlePolicy, count: ThrottleCount): number | undefined {
  if (count.failures < policy.threshold) return undefined;
  if (!policy.delay) return count.expiresAt.getTime();
  const { baseSeconds, maxSeconds } = policy.delay;
  // 2^(failures - threshold), without overflowing for a very long run of failures.
  const doublings = Math.min(count.failures - policy.threshold, 30);
  return count.lastAt.getTime() + Math.min(baseSeconds * 2 ** doublings, maxSeconds) * 1000;
}

function verdictOf(policy: ThrottlePolicy, count: ThrottleCount | undefined, now: number): ThrottleVerdict {
  if (!count) return ALLOWED(0);
  const until = refusedUntil(policy, count);
  if (until === undefined || until <= now) return ALLOWED(count.failures);
  return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)), failures: count.failures };
}

/** Only a hash of the subject is stored (a username or an address is nobody's business in the store). */
function keyOf(policy: ThrottlePolicy, subject: string): string {
  return `${policy.name}:${sha256(subject)}`;
}

export function createThrottle(store: ThrottleCounterStore, clock: () => number = Date.now): Throttle {
  return {
    async check(policy, subject) {
      const now = clock();
      return verdictOf(policy, await store.get(keyOf(policy, subject), new Date(now)), now);
    },

    async fail(policy, subject) {
      const now = clock();
      const count = await store.increment(keyOf(policy, subject), new Date(now), policy.windowSeconds * 1000, policy.sliding);
      return verdictOf(policy, count, now);
    },

    clear(policy, subject) {
      return store.clear(keyOf(policy, subject));
    },
  };
}

/** "1 second", "3 minutes": how long to wait, for a page. */
export function describeWait(seconds: number): string {
  const [n, unit] = seconds < 120 ? [seconds, 'second'] : [Math.ceil(seconds / 60), 'minute'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}
