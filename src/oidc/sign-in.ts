import type { SecurityEvents } from '../config/security-events.js';
import type { UserStore } from '../storage/users.js';
import { describeWait, THROTTLE_POLICIES, type Throttle } from '../tokens/throttle.js';

type User = NonNullable<Awaited<ReturnType<UserStore['authenticate']>>>;

/** A sign-in that did not succeed: what the login page says, with the status it answers. */
export interface SignInRefusal {
  status: 401 | 429;
  message: string;
  /** For Retry-After, when the attempt was refused before the password was checked. */
  retryAfterSeconds?: number;
}

export type SignInOutcome = { user: User; refusal?: undefined } | { user?: undefined; refusal: SignInRefusal };

export type SignIn = (username: unknown, password: unknown, ip: string | undefined) => Promise<SignInOutcome>;

const WRONG = 'Wrong username or password.';
const { account, address } = THROTTLE_POLICIES;

const tryAgain = (seconds: number) => `Try again in ${describeWait(seconds)} (after ${new Date(Date.now() + seconds * 1000).toISOString().slice(11, 19)} UTC).`;

/**
 * A password sign-in under the throttle (tokens/throttle.ts): refused while the client IP or the
 * username is throttled (before the password is checked, so the right one too), counted when it fails,
 * and the account's count cleared when it succeeds. A username is counted whether or not it exists, and
 * the answer words nothing differently, so that neither the page nor its timing tells them apart.
 */
export function createSignIn({ users, throttle, security }: { users: Pick<UserStore, 'authenticate'>; throttle: Throttle; security: SecurityEvents }): SignIn {
  return async (username, password, ip = '') => {
    if (typeof username !== 'string' || typeof password !== 'string' || !username || !password) return { refusal: { status: 401, message: WRONG } };
    const typed = username.slice(0, 100);

    const fromAddress = await throttle.check(address, ip);
    if (!fromAddress.allowed) {
      security.report('address_throttled', { ip, username: typed });
      return { refusal: refused(`Too many failed sign-ins from your network. ${tryAgain(fromAddress.retryAfterSeconds)}`, fromAddress.retryAfterSeconds) };
    }
    const forAccount = await throttle.check(account, username);
    if (!forAccount.allowed) {
      security.report('account_locked', { ip, username: typed, failures: forAccount.failures, retry_after_seconds: forAccount.retryAfterSeconds });
      return { refusal: refused(`Too many failed sign-ins for this username. ${tryAgain(forAccount.retryAfterSeconds)}`, forAccount.retryAfterSeconds) };
    }

    const user = await users.authenticate(username, password);
    if (user) {
      // Nothing to forget when no failure was counted (most sign-ins): no write. Failures counted
      // meanwhile, while the password was being checked, are kept rather than wiped.
      if (forAccount.failures > 0) await throttle.clear(account, username);
      return { user };
    }

    security.report('sign_in_failed', { ip, username: typed });
    const [accountAfter, addressAfter] = await Promise.all([throttle.fail(account, username), throttle.fail(address, ip)]);
    if (!addressAfter.allowed) security.report('address_throttled', { ip, username: typed, failures: addressAfter.failures });
    if (!accountAfter.allowed) {
      security.report('account_locked', { ip, username: typed, failures: accountAfter.failures, retry_after_seconds: accountAfter.retryAfterSeconds });
      return { refusal: { status: 401, message: `${WRONG} Too many failed sign-ins for this username. ${tryAgain(accountAfter.retryAfterSeconds)}` } };
    }
    return { refusal: { status: 401, message: WRONG } };
  };
}

function refused(message: string, retryAfterSeconds: number): SignInRefusal {
  return { status: 429, message, retryAfterSeconds };
}
