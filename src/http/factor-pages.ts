import type { Request, Response } from 'express';
import { TallyError } from '../lib/errors.js';
import type Provider from 'oidc-provider';
import { pageNonceOf } from '../lib/page-nonce.js';
import { passkeyLogin, type Passkeys } from '../oidc/passkeys.js';
import { MFA_LOGIN, needsTwoFactors, PASSWORD_LOGIN, type EnrolmentOffer, type SecondFactors } from '../oidc/second-factors.js';
import type { UserStore } from '../storage/users.js';
import type { Csrf } from './csrf.js';
import type { PasskeyChallenges } from './passkey-challenges.js';
import type { Tickets } from './tickets.js';
import { renderPage } from './views.js';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;
type User = { id: string; username: string; disabled?: boolean };

/**
 * The second-factor prompt (a TOTP or recovery code), posting `fields` (CSRF token, ticket) back to `action`;
 * with `passkeyChallenge` (where the user has a passkey), a passkey form too, whose script tags carry `nonce`.
 */
export function renderCodePrompt(locals: {
  action: string;
  fields: Record<string, string>;
  error?: string | undefined;
  passkeyChallenge?: string | undefined;
  nonce?: string | undefined;
}): Promise<string> {
  return renderPage('second-factor', { title: 'Two-step verification', error: undefined, passkeyChallenge: undefined, ...locals });
}

/** The enrolment page: the otpauth URI as a QR code (an SVG data URI: the CSP's img-src allows data:) and as text. */
export async function renderEnrolment(
  offer: EnrolmentOffer,
  locals: { action: string; fields: Record<string, string>; error?: string | undefined; intro?: string | undefined },
): Promise<string> {
  // Loaded for the enrolment page only: no other page draws a QR code.
  const { default: QRCode } = await import('qrcode');
  const svg = await QRCode.toString(offer.uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
  const qr = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
  return renderPage('enrol-totp', {
    title: 'Set up an authenticator',
    error: undefined,
    intro: undefined,
    ...locals,
    qr,
    secret: offer.secret,
    uri: offer.uri,
  });
}

const TICKET = 'interaction-second-step';
/** How long the second step may take after the password (the interaction itself lasts an hour). */
const TICKET_TTL = 10 * 60;

/**
 * The second step of an interaction's login, after the right password. A user with a second factor is
 * asked for a code; a user without one, when the client needs two factors (require_mfa or acr_values),
 * enrols an authenticator first; anyone else is signed in with the password alone. Between the steps
 * the page carries a ticket (tickets.ts) naming the interaction and the user, so the password is not asked again.
 */
export function createFactorPages({
  provider,
  users,
  csrf,
  factors,
  passkeys,
  challenges,
  tickets,
  showLogin,
  allowFormActionTo,
}: {
  provider: () => Provider;
  users: Pick<UserStore, 'find'>;
  csrf: Csrf;
  factors: SecondFactors;
  passkeys: Passkeys;
  challenges: PasskeyChallenges;
  tickets: Tickets;
  showLogin: (res: Response, details: Details, status: number, error: string) => Promise<void>;
  allowFormActionTo: (res: Response, redirectUri: unknown) => void;
}) {
  const action = (details: Details) => `/interaction/${details.uid}`;

  function fieldsFor(details: Details, user: User, step: 'code' | 'enrol') {
    return { _csrf: csrf.tokenFor(details.uid), ticket: tickets.issue(TICKET, { uid: details.uid, sub: user.id, step }, TICKET_TTL) };
  }

  async function askCode(res: Response, details: Details, user: User, status = 200, error?: string) {
    const { passkeys: count } = await factors.summary(user.id);
    const passkeyChallenge = count ? `${action(details)}/passkey-challenge` : undefined;
    allowFormActionTo(res, details.params.redirect_uri);
    res
      .status(status)
      .set('cache-control', 'no-store')
      .send(await renderCodePrompt({ action: action(details), fields: fieldsFor(details, user, 'code'), error, passkeyChallenge, nonce: pageNonceOf(res) }));
  }

  /** What a passkey challenge is bound to: this interaction, and the user who gave the password (none when passwordless). */
  const bindingOf = (details: Details, sub = '') => `interaction:${details.uid}:${sub}`;
  /** The user the second step's ticket names for this interaction (undefined: none, another's, or expired). */
  const secondStepUser = (details: Details, ticket: unknown) => {
    const claims = tickets.open<{ uid: string; sub: string; step: string }>(TICKET, ticket);
    return claims?.uid === details.uid && claims.step === 'code' ? claims.sub : undefined;
  };

  async function askEnrolment(res: Response, details: Details, user: User, status = 200, error?: string) {
    const client = await provider().Client.find(String(details.params.client_id));
    const offer = await factors.pendingEnrolment(user);
    allowFormActionTo(res, details.params.redirect_uri);
    res
      .status(status)
      .set('cache-control', 'no-store')
      .send(
        await renderEnrolment(offer, {
          action: action(details),
          fields: fieldsFor(details, user, 'enrol'),
          error,
          intro: `${client?.clientName ?? 'This application'} asks for two-step verification: set up an authenticator app to continue.`,
        }),
      );
  }

  const finish = (req: Request, res: Response, user: User, login: { amr: string[]; acr: string }) =>
    provider().interactionFinished(req, res, { login: { accountId: user.id, ...login } }, { mergeWithLastSubmission: false });

  return {
    /** The WebAuthn options and challenge ticket for this interaction's passkey form (passwordless, or after the password). */
    async passkeyChallenge(details: Details, body: Record<string, unknown>): Promise<{ options: { challenge: string }; challenge_ticket: string }> {
      const sub = body.ticket === undefined ? undefined : secondStepUser(details, body.ticket);
      if (body.ticket !== undefined && !sub) throw new TallyError(401, 'signed_out', 'This sign-in took too long. Sign in again.');
      const options = await passkeys.authenticationOptions(sub);
      return { options, challenge_ticket: challenges.issue(bindingOf(details, sub), options.challenge) };
    },

    /** A passkey alone (discoverable, user verified): both factors at once. */
    async passwordless(req: Request, res: Response, details: Details, body: Record<string, unknown>): Promise<void> {
      const challenge = challenges.open(bindingOf(details), body.challenge_ticket);
      const checked = await passkeys.verify({ response: body.passkey_response, challenge, ip: req.ip });
      const user = checked.ok ? await users.find(checked.value.userId) : undefined;
      if (!checked.ok || !user || user.disabled) {
        if (!checked.ok && checked.refusal.retryAfterSeconds) res.set('retry-after', String(checked.refusal.retryAfterSeconds));
        return showLogin(res, details, 401, checked.ok ? 'The passkey was not accepted.' : checked.refusal.message);
      }
      await finish(req, res, user, passkeyLogin(checked.value.method, false));
    },

    /** The password was right: ask a code, lead to enrolment, or sign in. */
    async afterPassword(req: Request, res: Response, details: Details, user: User): Promise<void> {
      if (await factors.hasSecondFactor(user.id)) return askCode(res, details, user);
      const client = await provider().Client.find(String(details.params.client_id));
      if (needsTwoFactors(client as { require_mfa?: unknown } | undefined, details.params.acr_values)) return askEnrolment(res, details, user);
      await finish(req, res, user, PASSWORD_LOGIN);
    },

    /** A code posted from the second step (its ticket checked here). */
    async submit(req: Request, res: Response, details: Details, body: Record<string, unknown>): Promise<void> {
      const ticket = tickets.open<{ uid: string; sub: string; step: string }>(TICKET, body.ticket);
      const user = ticket?.uid === details.uid ? await users.find(ticket.sub) : undefined;
      if (!ticket || !user || user.disabled) return showLogin(res, details, 401, 'This sign-in took too long. Sign in again.');
      // Enrolling is for a user without a factor: one enrolled meanwhile is asked for its code instead.
      if (ticket.step === 'enrol' && !(await factors.hasSecondFactor(user.id))) {
        if (await factors.confirmEnrolment(user, body.code, req.ip)) return finish(req, res, user, MFA_LOGIN);
        return askEnrolment(res, details, user, 401, 'Wrong code. Enter the code your app shows now.');
      }
      if (body.passkey_response !== undefined) {
        const challenge = challenges.open(bindingOf(details, user.id), body.challenge_ticket);
        const checked = await passkeys.verify({ response: body.passkey_response, challenge, userId: user.id, ip: req.ip });
        if (checked.ok) return finish(req, res, user, passkeyLogin(checked.value.method, true));
        if (checked.refusal.retryAfterSeconds) res.set('retry-after', String(checked.refusal.retryAfterSeconds));
        return askCode(res, details, user, checked.refusal.status, checked.refusal.message);
      }
      const outcome = await factors.verifyCode(user, body.code, req.ip);
      if (outcome.ok) return finish(req, res, user, MFA_LOGIN);
      if (outcome.refusal.retryAfterSeconds) res.set('retry-after', String(outcome.refusal.retryAfterSeconds));
      await askCode(res, details, user, outcome.refusal.status, outcome.refusal.message);
    },
  };
}
