import { randomUUID } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { TallyError } from '../lib/errors.js';
import { pageNonceOf } from '../lib/page-nonce.js';
import type { Passkeys } from '../oidc/passkeys.js';
import type { SecondFactors } from '../oidc/second-factors.js';
import type { SignIn } from '../oidc/sign-in.js';
import type { UserStore } from '../storage/users.js';
import type { Csrf } from './csrf.js';
import { addAccountPasskeyRoutes } from './account-passkeys.js';
import { renderCodePrompt, renderEnrolment } from './factor-pages.js';
import type { PasskeyChallenges } from './passkey-challenges.js';
import type { Tickets } from './tickets.js';
import { renderPage } from './views.js';

/**
 * $ISSUER/account: a user's own page (password, authenticator, recovery codes). Its session is a signed
 * cookie of its own (tickets.ts), short-lived and for this path only, not oidc-provider's session: the
 * page signs in with Tally's sign-in (oidc/sign-in.ts, the same throttle), then the second factor when
 * the user has one, so the page never gives a password alone what two factors guard. The cookie's
 * random `sid` keys the forms' CSRF tokens, and a new one is drawn at each step of the sign-in.
 */
const COOKIE = 'tally_account';
const TICKET = 'account-session';
/** A signed-in session lasts 15 minutes from the last page shown; the steps before it as long. */
const SESSION_TTL = 15 * 60;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 1024;
const PASSKEY_CHALLENGE = '/account/passkey-challenge';

export type Stage = 'anonymous' | 'code' | 'in';
export interface Session {
  sid: string;
  stage: Stage;
  sub?: string;
}

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function createAccountRouter({
  signIn,
  users,
  csrf,
  factors,
  passkeys,
  challenges,
  tickets,
  secureCookies,
}: {
  signIn: SignIn;
  users: Pick<UserStore, 'find' | 'update'>;
  csrf: Csrf;
  factors: SecondFactors;
  passkeys: Passkeys;
  challenges: PasskeyChallenges;
  tickets: Tickets;
  secureCookies: boolean;
}): Router {
  const router = express.Router();
  const parseForm = express.urlencoded({ extended: false, limit: '10kb', parameterLimit: 20 });

  const sessionOf = (req: Request) => tickets.open<Session & { exp: number }>(TICKET, readCookie(req, COOKIE));

  function start(res: Response, stage: Stage, sub?: string): Session {
    const session: Session = { sid: randomUUID(), stage, ...(sub ? { sub } : {}) };
    keep(res, session);
    return session;
  }

  function keep(res: Response, session: Session) {
    res.cookie(COOKIE, tickets.issue(TICKET, { ...session }, SESSION_TTL), {
      httpOnly: true,
      sameSite: 'strict',
      secure: secureCookies,
      path: '/account',
      maxAge: SESSION_TTL * 1000,
    });
  }

  const fieldsFor = (session: Session) => ({ _csrf: csrf.tokenFor(`account:${session.sid}`) });

  async function send(res: Response, status: number, html: Promise<string>) {
    res
      .status(status)
      .set('cache-control', 'no-store')
      .send(await html);
  }

  const signInPage = (res: Response, session: Session, status = 200, error?: string, username = '') =>
    send(
      res,
      status,
      renderPage('login', {
        title: 'Sign in',
        clientName: 'your account',
        action: '/account/sign-in',
        csrf: fieldsFor(session)._csrf,
        error,
        username,
        passkeyChallenge: PASSKEY_CHALLENGE,
        nonce: pageNonceOf(res),
      }),
    );

  /** The second step of the page's sign-in: a one-time code, or a passkey when the user has one. */
  async function codePrompt(res: Response, session: Session, status = 200, error?: string) {
    const { passkeys: count } = await factors.summary(session.sub!);
    const passkeyChallenge = count ? PASSKEY_CHALLENGE : undefined;
    await send(
      res,
      status,
      renderCodePrompt({ action: '/account/second-factor', fields: fieldsFor(session), error, passkeyChallenge, nonce: pageNonceOf(res) }),
    );
  }

  async function accountPage(res: Response, session: Session, status = 200, messages: { notice?: string; error?: string } = {}) {
    const user = await users.find(session.sub!);
    if (!user || user.disabled) throw new TallyError(401, 'signed_out', 'You are signed out.');
    const summary = await factors.summary(user.id);
    const passkeyList = await passkeys.list(user.id);
    keep(res, session);
    await send(
      res,
      status,
      renderPage('account', {
        title: 'Your account',
        username: user.username,
        ...summary,
        passkeyList,
        nonce: pageNonceOf(res),
        fields: fieldsFor(session),
        notice: undefined,
        error: undefined,
        ...messages,
      }),
    );
  }

  /** A POST from this page: the session at the stage it must be, and the form's CSRF token for it. */
  function posted(req: Request, stage: Stage | Stage[]): Session {
    const session = sessionOf(req);
    if (!session || !([] as Stage[]).concat(stage).includes(session.stage))
      throw new TallyError(401, 'signed_out', 'Your session on this page ended. Open the account page again.');
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!csrf.verify(`account:${session.sid}`, body._csrf))
      throw new TallyError(403, 'invalid_csrf', 'This form has expired or was not sent by this site. Go back and try again.');
    return session;
  }

  const bodyOf = (req: Request) => (req.body ?? {}) as Record<string, unknown>;

  /** Removing a factor asks who is there: a 6-digit code from the app, or else the password (8 characters at least: never 6 digits). */
  const proves = async (user: { id: string; username: string }, proof: unknown, ip: string | undefined): Promise<boolean> =>
    typeof proof === 'string' && /^\s*\d{6}\s*$/.test(proof) ? (await factors.verifyCode(user, proof, ip)).ok : !!(await signIn(user.username, proof, ip)).user;

  /** A passkey's assertion at this page's sign-in (after the password, or alone), against the challenge made for this session. */
  const verifyPasskey = (req: Request, session: Session) =>
    passkeys.verify({
      response: bodyOf(req).passkey_response,
      challenge: challenges.open(`account:${session.sid}:sign-in`, bodyOf(req).challenge_ticket),
      userId: session.stage === 'code' ? session.sub : undefined,
      ip: req.ip,
    });
  const signedInUser = async (session: Session) => {
    const user = await users.find(session.sub!);
    if (!user || user.disabled) throw new TallyError(401, 'signed_out', 'You are signed out.');
    return user;
  };

  router.get('/account', async (req, res) => {
    const session = sessionOf(req);
    if (session?.stage === 'in') return accountPage(res, session);
    if (session?.stage === 'code') return codePrompt(res, session);
    return signInPage(res, start(res, 'anonymous'));
  });

  router.post('/account/sign-in', parseForm, async (req, res) => {
    const anonymous = posted(req, 'anonymous');
    if (bodyOf(req).passkey_response !== undefined) {
      // Passwordless: a discoverable passkey with user verification is both factors.
      const outcome = await verifyPasskey(req, anonymous);
      const user = outcome.ok ? await users.find(outcome.value.userId) : undefined;
      if (!user || user.disabled) return signInPage(res, start(res, 'anonymous'), 401, outcome.ok ? 'The passkey was not accepted.' : outcome.refusal.message);
      start(res, 'in', user.id);
      return res.redirect(303, '/account');
    }
    const { username, password } = bodyOf(req);
    const { user, refusal } = await signIn(username, password, req.ip);
    if (!user) {
      if (refusal.retryAfterSeconds) res.set('retry-after', String(refusal.retryAfterSeconds));
      return signInPage(res, start(res, 'anonymous'), refusal.status, refusal.message, typeof username === 'string' ? username.slice(0, 100) : '');
    }
    if (await factors.hasSecondFactor(user.id)) return codePrompt(res, start(res, 'code', user.id));
    start(res, 'in', user.id);
    res.redirect(303, '/account');
  });

  router.post('/account/second-factor', parseForm, async (req, res) => {
    const session = posted(req, 'code');
    const user = await signedInUser(session);
    const outcome = bodyOf(req).passkey_response !== undefined ? await verifyPasskey(req, session) : await factors.verifyCode(user, bodyOf(req).code, req.ip);
    if (!outcome.ok) {
      if (outcome.refusal.retryAfterSeconds) res.set('retry-after', String(outcome.refusal.retryAfterSeconds));
      return codePrompt(res, session, outcome.refusal.status, outcome.refusal.message);
    }
    start(res, 'in', user.id);
    res.redirect(303, '/account');
  });

  router.post('/account/password', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    const { current_password: current, new_password: next } = bodyOf(req);
    // The current password through the sign-in, so guessing it here is throttled as anywhere.
    const check = await signIn(user.username, current, req.ip);
    if (!check.user) return accountPage(res, session, check.refusal.status, { error: `The current password is not right. ${check.refusal.message}` });
    if (typeof next !== 'string' || next.length < MIN_PASSWORD || next.length > MAX_PASSWORD)
      return accountPage(res, session, 400, { error: `The new password must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters long.` });
    await users.update(user.id, { password: next });
    await accountPage(res, session, 200, { notice: 'Your password is changed.' });
  });

  router.post('/account/totp', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    const offer = await factors.pendingEnrolment(user, { fresh: true });
    await send(res, 200, renderEnrolment(offer, { action: '/account/totp/confirm', fields: fieldsFor(session) }));
  });

  router.post('/account/totp/confirm', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    if (await factors.confirmEnrolment(user, bodyOf(req).code, req.ip)) return accountPage(res, session, 200, { notice: 'Your authenticator is on.' });
    const offer = await factors.pendingEnrolment(user);
    await send(
      res,
      401,
      renderEnrolment(offer, { action: '/account/totp/confirm', fields: fieldsFor(session), error: 'Wrong code. Enter the code your app shows now.' }),
    );
  });

  router.post('/account/totp/remove', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    if (!(await proves(user, bodyOf(req).proof, req.ip)))
      return accountPage(res, session, 401, { error: 'That is neither your password nor a code from your app.' });
    await factors.removeAuthenticator(user, req.ip);
    await accountPage(res, session, 200, { notice: 'Your authenticator is removed.' });
  });

  router.post('/account/recovery-codes', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    const codes = await factors.newRecoveryCodes(user, req.ip);
    keep(res, session);
    await send(res, 200, renderPage('recovery-codes', { title: 'Recovery codes', codes }));
  });

  addAccountPasskeyRoutes(router, { parseForm, posted, signedInUser, accountPage, bodyOf, passkeys, challenges, proves });

  router.post('/account/sign-out', parseForm, async (req, res) => {
    posted(req, 'in');
    res.clearCookie(COOKIE, { path: '/account', httpOnly: true, sameSite: 'strict', secure: secureCookies });
    res.redirect(303, '/account');
  });

  return router;
}
