import Provider, { errors } from 'oidc-provider';
import type { SecurityEvents } from '../config/security-events.js';
import { describeWait, THROTTLE_POLICIES, type Throttle } from '../tokens/throttle.js';
import { interceptUserCodeFind } from './internals/index.js';

const { userCode } = THROTTLE_POLICIES;

/**
 * The device verification page refused a user_code because its client IP guessed too many wrong
 * ones (a 429 on the same page, saying when to try again; see userCodeInputSource in provider.ts).
 */
export class UserCodesThrottled extends errors.InvalidRequest {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many wrong codes; try again in ${describeWait(retryAfterSeconds)}`);
    this.status = this.statusCode = 429;
    this.expose = true;
  }

  /** What the page says. */
  get pageMessage(): string {
    return `Too many wrong codes from your network. Try again in ${describeWait(this.retryAfterSeconds)}.`;
  }
}

/**
 * Device user_code guesses, per client IP (THROTTLE_POLICIES.userCode): every code not found is a
 * failure (`user_code_failed`); once the policy refuses, every code is refused before it is looked up,
 * a right one too, until the window passes. An expired or used code is no guess: it is not counted.
 */
export function installUserCodeThrottle(provider: Provider, { throttle, security }: { throttle: Throttle; security: SecurityEvents }): void {
  interceptUserCodeFind(provider, async (find) => {
    const ip = Provider.ctx?.ip ?? '';
    const before = await throttle.check(userCode, ip);
    if (!before.allowed) {
      security.report('user_code_failed', { ip, throttled: true, retry_after_seconds: before.retryAfterSeconds });
      throw new UserCodesThrottled(before.retryAfterSeconds);
    }
    const code = await find();
    if (!code) {
      const after = await throttle.fail(userCode, ip);
      security.report('user_code_failed', { ip, failures: after.failures, throttled: !after.allowed });
    }
    return code;
  });
}
