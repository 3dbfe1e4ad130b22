import { randomInt } from 'node:crypto';
import type { SecurityEvents } from '../config/security-events.js';
import { sha256 } from '../lib/crypto.js';
import type { FactorStore, FactorSummary } from '../storage/factors.js';
import { describeWait, THROTTLE_POLICIES, type Throttle } from '../tokens/throttle.js';
import type { SignInRefusal } from './sign-in.js';

/**
 * Authentication context classes, in discovery (`acr_values_supported`) and the ID token's `acr`. Tally's
 * own URNs: the OpenID EAP values (`phr`, `phrh`) promise phishing resistance, which a password and a
 * TOTP code do not give, and numeric levels say nothing by themselves. A passkey sign-in may add `phr`.
 */
export const ACR = { password: 'urn:tally:acr:pwd', mfa: 'urn:tally:acr:mfa' } as const;
export const ACR_VALUES = [ACR.password, ACR.mfa];

/**
 * RFC 8176 `amr` of a password sign-in, and of one with a one-time code after it. A recovery code is a
 * one-time password too (`otp`): RFC 8176 has no value of its own for it.
 */
export const PASSWORD_LOGIN = { amr: ['pwd'], acr: ACR.password };
export const MFA_LOGIN = { amr: ['pwd', 'otp', 'mfa'], acr: ACR.mfa };

/** Whether an authorization request needs two factors: the client is registered so, or asks with acr_values. */
export function needsTwoFactors(client: { require_mfa?: unknown } | undefined, acrValues: unknown): boolean {
  return client?.require_mfa === true || (typeof acrValues === 'string' && acrValues.split(' ').includes(ACR.mfa));
}

// 10 characters from 31 symbols without look-alikes (no 0/O, 1/I/L): about 49.5 random bits per code.
const RECOVERY_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const RECOVERY_CODES = 10;
const RECOVERY_LENGTH = 10;

/** Codes as shown (XXXXX-XXXXX) and as typed: case, spaces and dashes do not matter. */
const normalise = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');

/**
 * Stored as SHA-256, not argon2: a code is about 50 random bits, not a person's choice, so there is no
 * dictionary to try, and it only stands in for the second factor: whoever reads the database still
 * needs the password (argon2id). Online guessing is throttled (THROTTLE_POLICIES.secondFactor). The
 * user id is hashed in, so one precomputed table cannot serve every account.
 */
const recoveryHash = (userId: string, code: string) => sha256(`recovery:${userId}:${normalise(code)}`);

export type CodeOutcome = { ok: true; method: 'totp' | 'recovery' } | { ok: false; refusal: SignInRefusal };

export type GuardOutcome<T> = { ok: true; value: T } | { ok: false; refusal: SignInRefusal };

/**
 * The one rule for an attempt at a second factor (a one-time code, a passkey's assertion), per account
 * under THROTTLE_POLICIES.secondFactor: refused while the account is throttled (before the attempt is
 * made, so a right one too); a failure (`attempt` answers undefined) is reported and counted, a success
 * clears the count.
 */
export function createSecondFactorGuard({ throttle, security }: { throttle: Throttle; security: SecurityEvents }) {
  const { secondFactor } = THROTTLE_POLICIES;
  return async function guard<T>(
    userId: string,
    ip: string,
    wording: { event: 'second_factor_failed' | 'passkey_failed'; wrong: string; what: string },
    attempt: (noteReason: (reason: string) => void) => Promise<T | undefined>,
  ): Promise<GuardOutcome<T>> {
    const before = await throttle.check(secondFactor, userId);
    if (!before.allowed) {
      security.report('second_factor_locked', { ip, user_id: userId, failures: before.failures, retry_after_seconds: before.retryAfterSeconds });
      return {
        ok: false,
        refusal: {
          status: 429,
          message: `Too many wrong ${wording.what}. Try again in ${describeWait(before.retryAfterSeconds)}.`,
          retryAfterSeconds: before.retryAfterSeconds,
        },
      };
    }
    let reason: string | undefined;
    const value = await attempt((why) => (reason = why));
    if (value !== undefined) {
      await throttle.clear(secondFactor, userId);
      return { ok: true, value };
    }
    security.report(wording.event, { ip, user_id: userId, reason });
    const after = await throttle.fail(secondFactor, userId);
    if (!after.allowed) {
      security.report('second_factor_locked', { ip, user_id: userId, failures: after.failures, retry_after_seconds: after.retryAfterSeconds });
      return {
        ok: false,
        refusal: { status: 401, message: `${wording.wrong} Too many wrong ${wording.what}: try again in ${describeWait(after.retryAfterSeconds)}.` },
      };
    }
    return { ok: false, refusal: { status: 401, message: wording.wrong } };
  };
}

export type SecondFactorGuard = ReturnType<typeof createSecondFactorGuard>;

export interface EnrolmentOffer {
  secret: string;
  uri: string;
}

// otplib is loaded at the first TOTP code or enrolment, not at start: most sign-ins never need it.
let otplib: Promise<typeof import('otplib')> | undefined;
const totpLibrary = () => (otplib ??= import('otplib'));

export function createSecondFactors({
  factors,
  throttle,
  security,
  issuer,
}: {
  factors: FactorStore;
  throttle: Throttle;
  security: SecurityEvents;
  issuer: string;
}) {
  const guard = createSecondFactorGuard({ throttle, security });
  const offerFor = async (username: string, secret: string): Promise<EnrolmentOffer> => ({
    secret,
    uri: (await totpLibrary()).generateURI({ issuer: new URL(issuer).host, label: username, secret }),
  });

  /** The step a right TOTP code matches on one of these authenticators, accepted once; undefined otherwise. */
  async function acceptTotp(userId: string, code: string, confirmed: boolean): Promise<boolean> {
    if (!/^\d{6}$/.test(code)) return false;
    for (const factor of await factors.totpFactors(userId, { confirmed })) {
      // One step either side: an authenticator's clock a little off, or a code typed as it changed.
      const result = await (await totpLibrary()).verify({ secret: factor.secret, token: code, epochTolerance: 30 });
      if (result.valid && 'timeStep' in result && (await factors.acceptTotpStep(userId, factor.id, result.timeStep))) return true;
    }
    return false;
  }

  return {
    /** The throttle rule for second factors, for passkeys' assertions too (oidc/passkeys.ts). */
    guard,
    summary: (userId: string): Promise<FactorSummary> => factors.summary(userId),

    /** Whether the user has a second factor to be asked for. */
    async hasSecondFactor(userId: string): Promise<boolean> {
      const summary = await factors.summary(userId);
      return summary.totp || summary.recoveryCodesLeft > 0 || summary.passkeys > 0;
    },

    /**
     * A one-time code after a right password, under the throttle: an authenticator's code (6 digits) or a
     * recovery code (used once). A wrong code counts against the account; a right one clears its count.
     */
    async verifyCode(user: { id: string; username: string }, typed: unknown, ip = ''): Promise<CodeOutcome> {
      const code = typeof typed === 'string' ? normalise(typed).slice(0, 40) : '';
      const outcome = await guard(user.id, ip, { event: 'second_factor_failed', wrong: 'Wrong code.', what: 'codes' }, async () => {
        if (await acceptTotp(user.id, code, true)) return 'totp' as const;
        if (code.length === RECOVERY_LENGTH && (await factors.useRecoveryCode(user.id, recoveryHash(user.id, code)))) {
          const left = (await factors.summary(user.id)).recoveryCodesLeft;
          security.report('recovery_code_used', { ip, user_id: user.id, recovery_codes_left: left });
          return 'recovery' as const;
        }
        return undefined;
      });
      return outcome.ok ? { ok: true, method: outcome.value } : outcome;
    },

    /** The authenticator waiting for its first code, or a new one (replacing any other waiting). */
    async pendingEnrolment(user: { id: string; username: string }, { fresh = false } = {}): Promise<EnrolmentOffer> {
      const [pending] = fresh ? [] : await factors.totpFactors(user.id, { confirmed: false });
      if (pending) return offerFor(user.username, pending.secret);
      const secret = (await totpLibrary()).generateSecret();
      await factors.addPendingTotp(user.id, secret, 'Authenticator');
      return offerFor(user.username, secret);
    },

    /** Confirms the waiting authenticator with its first code; it then replaces any earlier one. */
    async confirmEnrolment(user: { id: string }, typed: unknown, ip = ''): Promise<boolean> {
      const ok = typeof typed === 'string' && (await acceptTotp(user.id, normalise(typed), false));
      if (ok) security.report('factor_enrolled', { ip, user_id: user.id, kind: 'totp' });
      return ok;
    },

    async removeAuthenticator(user: { id: string }, ip = ''): Promise<void> {
      if (await factors.removeTotp(user.id)) security.report('factor_removed', { ip, user_id: user.id, kind: 'totp' });
    },

    /** New recovery codes (shown once), replacing the earlier ones. */
    async newRecoveryCodes(user: { id: string }, ip = ''): Promise<string[]> {
      const codes = Array.from({ length: RECOVERY_CODES }, () =>
        Array.from({ length: RECOVERY_LENGTH }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join(''),
      );
      await factors.replaceRecoveryCodes(
        user.id,
        codes.map((code) => recoveryHash(user.id, code)),
      );
      security.report('factor_enrolled', { ip, user_id: user.id, kind: 'recovery' });
      return codes.map((code) => `${code.slice(0, 5)}-${code.slice(5)}`);
    },
  };
}

export type SecondFactors = ReturnType<typeof createSecondFactors>;
