import type { Request, RequestHandler, Response, Router } from 'express';
import type { Passkeys } from '../oidc/passkeys.js';
import type { UserStore } from '../storage/users.js';
import type { Session, Stage } from './account.js';
import type { PasskeyChallenges } from './passkey-challenges.js';

type User = NonNullable<Awaited<ReturnType<UserStore['find']>>>;

/**
 * The account page's passkey routes: the challenges its script asks for (JSON: WebAuthn options and a
 * ticket binding the challenge to this page's session), adding a passkey, renaming and removing one
 * (removal asks the password or a code, as removing the authenticator does). Mounted by account.ts.
 */
export function addAccountPasskeyRoutes(
  router: Router,
  {
    parseForm,
    posted,
    signedInUser,
    accountPage,
    bodyOf,
    passkeys,
    challenges,
    proves,
  }: {
    parseForm: RequestHandler;
    posted: (req: Request, stage: Stage | Stage[]) => Session;
    signedInUser: (session: Session) => Promise<User>;
    accountPage: (res: Response, session: Session, status?: number, messages?: { notice?: string; error?: string }) => Promise<void>;
    bodyOf: (req: Request) => Record<string, unknown>;
    passkeys: Passkeys;
    challenges: PasskeyChallenges;
    proves: (user: User, proof: unknown, ip: string | undefined) => Promise<boolean>;
  },
): void {
  const answer = (res: Response, options: { challenge: string }, binding: string) =>
    res.set('cache-control', 'no-store').json({ options, challenge_ticket: challenges.issue(binding, options.challenge) });

  // Sign-in: a passkey alone (anonymous) or after the password (code); the user's passkeys in the latter.
  router.post('/account/passkey-challenge', parseForm, async (req, res) => {
    const session = posted(req, ['anonymous', 'code']);
    const options = await passkeys.authenticationOptions(session.stage === 'code' ? session.sub : undefined);
    answer(res, options, `account:${session.sid}:sign-in`);
  });

  router.post('/account/passkeys/options', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    answer(res, await passkeys.registrationOptions(user), `account:${session.sid}:register`);
  });

  router.post('/account/passkeys', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    const body = bodyOf(req);
    const challenge = challenges.open(`account:${session.sid}:register`, body.challenge_ticket);
    const added = await passkeys.register(user, { response: body.passkey_response, challenge, label: body.label, ip: req.ip });
    if (!added.ok) return accountPage(res, session, 400, { error: added.message });
    await accountPage(res, session, 200, { notice: `Your passkey “${added.label}” is added.` });
  });

  router.post('/account/passkeys/rename', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    const { id, label } = bodyOf(req);
    if (!(await passkeys.rename(user.id, id, label))) return accountPage(res, session, 400, { error: 'Name the passkey (1 to 60 characters).' });
    await accountPage(res, session, 200, { notice: 'The passkey is renamed.' });
  });

  router.post('/account/passkeys/remove', parseForm, async (req, res) => {
    const session = posted(req, 'in');
    const user = await signedInUser(session);
    const { id, proof } = bodyOf(req);
    if (!(await proves(user, proof, req.ip))) return accountPage(res, session, 401, { error: 'That is neither your password nor a code from your app.' });
    if (!(await passkeys.remove(user.id, id, req.ip))) return accountPage(res, session, 404, { error: 'There is no such passkey.' });
    await accountPage(res, session, 200, { notice: 'The passkey is removed.' });
  });
}
