import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
  VerifiedAuthenticationResponse,
  VerifiedRegistrationResponse,
} from '@simplewebauthn/server';
import type { SecurityEvents } from '../config/security-events.js';
import { sha256 } from '../lib/crypto.js';
import type { FactorStore, PasskeySummary } from '../storage/factors.js';
import type { ReplayMarkStore } from '../storage/replay-marks.js';
import { ACR, type GuardOutcome, type SecondFactorGuard } from './second-factors.js';
import type { SignInRefusal } from './sign-in.js';

/**
 * Passkeys (WebAuthn, with @simplewebauthn/server): enrolment on the account page, and assertions at
 * sign-in, after the password (a second factor) or alone (passwordless, a discoverable credential).
 * The relying party is the issuer: its host is the RP id, its origin the only origin accepted. Resident
 * keys and user verification are required, at enrolment and at every assertion.
 *
 * Challenges: made here, handed by the pages to the browser inside a signed ticket bound to the account
 * session or the interaction (http/passkey-challenges.ts), so the challenge checked is always the one
 * the server made for that session, never one the browser names; each is taken once (a replay mark,
 * whichever replica verifies) and lives PASSKEY_CHALLENGE_TTL seconds.
 */
export const PASSKEY_CHALLENGE_TTL = 300;

// Loaded at the first passkey ceremony, not at start: the library and its ASN.1 and CBOR dependencies
// add about 30 MiB to the resident memory of a server that may never see a passkey (bench/ANALYSIS.md).
let library: Promise<typeof import('@simplewebauthn/server')> | undefined;
const webAuthn = () => (library ??= import('@simplewebauthn/server'));
const MAX_LABEL = 60;
// user_factors.last_step is a 32-bit integer; a real counter grows by one (or a little) per use.
const MAX_COUNTER = 2 ** 31 - 1;

/**
 * RFC 8176 `amr` of a passkey sign-in:
 * - `hwk` for a passkey bound to its authenticator (the assertion's backup-eligible flag unset: the key
 *   cannot leave the hardware), `swk` for a synced passkey (backup eligible: a keychain copies the
 *   private key between devices, so it is a software-kept key, not proof of one piece of hardware);
 * - `user`: user verification was required and its flag checked (the authenticator's PIN or biometric;
 *   which of the two is not said, so neither `pin` nor `fpt`/`face` is claimed);
 * - `mfa` and the mfa acr: a passkey verified with its PIN or biometric is a multi-factor cryptographic
 *   authenticator (possession of the key, plus knowledge or inherence unlocking it: NIST SP 800-63B
 *   §5.1.9), alone or after the password (then `pwd` too). Without the UV flag the assertion is refused,
 *   so the mfa acr is never given for mere presence.
 */
export type PasskeyMethod = 'hwk' | 'swk';
export function passkeyLogin(method: PasskeyMethod, afterPassword: boolean): { amr: string[]; acr: string } {
  return { amr: [...(afterPassword ? ['pwd'] : []), method, 'user', 'mfa'], acr: ACR.mfa };
}

/** What the browser posted (a JSON string): the credential's answer, or undefined when it is not one. */
function parseResponse<T extends RegistrationResponseJSON | AuthenticationResponseJSON>(posted: unknown): T | undefined {
  if (typeof posted !== 'string' || posted.length > 20_000) return undefined;
  try {
    const value = JSON.parse(posted) as Partial<T>;
    return value && typeof value === 'object' && typeof value.id === 'string' && value.type === 'public-key' && typeof value.response === 'object'
      ? (value as T)
      : undefined;
  } catch {
    return undefined;
  }
}

export const cleanLabel = (label: unknown): string | undefined => {
  const text = typeof label === 'string' ? label.replace(/\s+/g, ' ').trim() : '';
  return text && text.length <= MAX_LABEL ? text : undefined;
};

export type PasskeyOutcome = GuardOutcome<{ userId: string; method: PasskeyMethod }>;

export function createPasskeys({
  factors,
  replayMarks,
  guard,
  security,
  issuer,
}: {
  factors: FactorStore;
  replayMarks: ReplayMarkStore;
  guard: SecondFactorGuard;
  security: SecurityEvents;
  issuer: string;
}) {
  const { hostname: rpID, origin } = new URL(issuer);
  /** Takes a challenge once; false when it was taken before. */
  const takeChallenge = (challenge: string) => replayMarks.mark(`webauthn:${sha256(challenge)}`, new Date(Date.now() + PASSKEY_CHALLENGE_TTL * 1000));
  const refusal = (message: string): { ok: false; refusal: SignInRefusal } => ({ ok: false, refusal: { status: 401, message } });

  return {
    list: (userId: string): Promise<PasskeySummary[]> => factors.passkeys(userId),

    /** Options for navigator.credentials.create(): a resident key with user verification, none the user has already. */
    async registrationOptions(user: { id: string; username: string; name?: string | null }): Promise<PublicKeyCredentialCreationOptionsJSON> {
      return (await webAuthn()).generateRegistrationOptions({
        rpName: 'Tally',
        rpID,
        userName: user.username,
        userID: new TextEncoder().encode(user.id),
        userDisplayName: user.name ?? user.username,
        attestationType: 'none',
        excludeCredentials: await factors.passkeyCredentials(user.id),
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
        timeout: PASSKEY_CHALLENGE_TTL * 1000,
      });
    },

    /** Verifies a new credential against the challenge made for it and keeps it; a message for the page when refused. */
    async register(
      user: { id: string },
      input: { response: unknown; challenge: string | undefined; label: unknown; ip?: string | undefined },
    ): Promise<{ ok: true; label: string } | { ok: false; message: string }> {
      const label = cleanLabel(input.label);
      if (!label) return { ok: false, message: `Name the passkey (1 to ${MAX_LABEL} characters).` };
      const response = parseResponse<RegistrationResponseJSON>(input.response);
      if (!response) return { ok: false, message: 'The browser sent no passkey. Passkeys need JavaScript.' };
      if (!input.challenge || !(await takeChallenge(input.challenge)))
        return { ok: false, message: 'This passkey request expired or was used already. Try again.' };
      let verified: VerifiedRegistrationResponse;
      try {
        verified = await (await webAuthn()).verifyRegistrationResponse({
          response,
          expectedChallenge: input.challenge,
          expectedOrigin: origin,
          expectedRPID: rpID,
          requireUserVerification: true,
        });
      } catch {
        return { ok: false, message: 'The passkey could not be verified. Try again.' };
      }
      const credential = verified.registrationInfo?.credential;
      if (!verified.verified || !credential || credential.counter > MAX_COUNTER || (await factors.findPasskey(credential.id)))
        return { ok: false, message: 'The passkey could not be verified. Try again.' };
      await factors.addPasskey(
        user.id,
        {
          credentialId: credential.id,
          publicKey: Buffer.from(credential.publicKey).toString('base64url'),
          transports: credential.transports ?? [],
          counter: credential.counter,
        },
        label,
      );
      security.report('factor_enrolled', { ip: input.ip, user_id: user.id, kind: 'passkey' });
      return { ok: true, label };
    },

    /** Options for navigator.credentials.get(): the user's passkeys, or (passwordless) any discoverable one. */
    async authenticationOptions(userId?: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
      return (await webAuthn()).generateAuthenticationOptions({
        rpID,
        userVerification: 'required',
        timeout: PASSKEY_CHALLENGE_TTL * 1000,
        ...(userId ? { allowCredentials: await factors.passkeyCredentials(userId) } : {}),
      });
    },

    /**
     * Verifies an assertion against the challenge made for it: of `userId`'s passkeys after a password, of
     * anyone's when passwordless (the credential names its user, and its user handle must agree). Under the
     * second-factor throttle of the passkey's user; the counter must move forward (a clone's does not).
     */
    async verify(input: { response: unknown; challenge: string | undefined; userId?: string | undefined; ip?: string | undefined }): Promise<PasskeyOutcome> {
      const ip = input.ip ?? '';
      const response = parseResponse<AuthenticationResponseJSON>(input.response);
      if (!response) return refusal('The browser sent no passkey. Passkeys need JavaScript.');
      if (!input.challenge || !(await takeChallenge(input.challenge))) return refusal('This passkey request expired or was used already. Try again.');
      const challenge = input.challenge;
      const stored = await factors.findPasskey(response.id, input.userId);
      const wording = { event: 'passkey_failed', wrong: 'The passkey was not accepted.', what: 'passkey attempts' } as const;
      if (!stored && input.userId) {
        // After a password: another passkey than this user's counts as a wrong one against the account.
        return guard<{ userId: string; method: PasskeyMethod }>(input.userId, ip, wording, async (because) => {
          because('unknown_credential');
          return undefined;
        });
      }
      if (!stored) {
        // Passwordless, a credential nobody registered here: no account to count it against.
        security.report('passkey_failed', { ip, reason: 'unknown_credential' });
        return refusal('This passkey is not registered here.');
      }
      return guard(stored.userId, ip, wording, async (because) => {
        let result: VerifiedAuthenticationResponse;
        try {
          result = await (await webAuthn()).verifyAuthenticationResponse({
            response,
            expectedChallenge: challenge,
            expectedOrigin: origin,
            expectedRPID: rpID,
            credential: {
              id: stored.credentialId,
              publicKey: Buffer.from(stored.publicKey, 'base64url'),
              counter: stored.counter,
              transports: stored.transports,
            },
            requireUserVerification: true,
          });
        } catch (error) {
          because(/counter/i.test(String(error)) ? 'counter_went_back' : 'invalid_assertion');
          return undefined;
        }
        const handle = response.response.userHandle;
        const { newCounter, credentialDeviceType } = result.authenticationInfo;
        if (!result.verified) because('invalid_assertion');
        // Passwordless: the credential's user handle must name the user the credential is registered to.
        else if (!input.userId && (!handle || Buffer.from(handle, 'base64url').toString('utf8') !== stored.userId)) because('user_handle');
        else if (newCounter > MAX_COUNTER || !(await factors.advancePasskeyCounter(stored.id, newCounter))) because('counter_went_back');
        else return { userId: stored.userId, method: credentialDeviceType === 'multiDevice' ? ('swk' as const) : ('hwk' as const) };
        return undefined;
      });
    },

    async rename(userId: string, id: unknown, label: unknown): Promise<boolean> {
      const clean = cleanLabel(label);
      return typeof id === 'string' && !!clean && factors.renamePasskey(userId, id, clean);
    },

    async remove(userId: string, id: unknown, ip = ''): Promise<boolean> {
      const removed = typeof id === 'string' && (await factors.removePasskey(userId, id));
      if (removed) security.report('factor_removed', { ip, user_id: userId, kind: 'passkey' });
      return removed;
    },
  };
}

export type Passkeys = ReturnType<typeof createPasskeys>;
