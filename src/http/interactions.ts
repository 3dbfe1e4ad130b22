import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { SignIn } from '../oidc/sign-in.js';
import type { SecondFactors } from '../oidc/second-factors.js';
import type { Tickets } from './tickets.js';
import { createFactorPages } from './factor-pages.js';
import type { UserStore } from '../storage/users.js';
import type { Csrf } from './csrf.js';
import { TallyError } from '../lib/errors.js';
import { renderPage } from './views.js';
import { pageNonceOf } from '../lib/page-nonce.js';
import type { Passkeys } from '../oidc/passkeys.js';
import type { PasskeyChallenges } from './passkey-challenges.js';
import { ADMIN_SCOPE, ADMIN_SCOPE_DESCRIPTION, splitAdminScope, userMayHoldAdmin } from '../oidc/admin-rights.js';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name and username',
  email: 'See your email address',
  offline_access: 'Stay signed in when you are away',
};

/** The page may post to itself, and what follows redirects to the client: allow that origin too. */
function allowFormActionTo(res: Response, redirectUri: unknown) {
  const csp = res.getHeader('content-security-policy');
  if (typeof csp !== 'string' || typeof redirectUri !== 'string' || !URL.canParse(redirectUri)) return;
  res.setHeader('content-security-policy', csp.replace("form-action 'self'", `form-action 'self' ${new URL(redirectUri).origin}`));
}

export function createInteractionRouter({
  provider,
  signIn,
  users,
  csrf,
  factors,
  passkeys,
  challenges,
  tickets,
}: {
  provider: () => Provider;
  signIn: SignIn;
  users: Pick<UserStore, 'find'>;
  csrf: Csrf;
  factors: SecondFactors;
  passkeys: Passkeys;
  challenges: PasskeyChallenges;
  tickets: Tickets;
}): Router {
  const router = express.Router();
  const parseForm = express.urlencoded({ extended: false, limit: '10kb', parameterLimit: 20 });

  async function show(res: Response, details: Details, status = 200, error?: string, username?: string) {
    const client = await provider().Client.find(String(details.params.client_id));
    const common = { uid: details.uid, csrf: csrf.tokenFor(details.uid), clientName: client?.clientName ?? details.params.client_id, error };
    allowFormActionTo(res, details.params.redirect_uri);
    res.status(status).set('cache-control', 'no-store');
    if (details.prompt.name === 'login') {
      const action = `/interaction/${details.uid}`;
      const passkeyChallenge = `${action}/passkey-challenge`;
      const nonce = pageNonceOf(res);
      res.send(
        await renderPage('login', { ...common, action, title: 'Sign in', username: username ?? details.params.login_hint ?? '', passkeyChallenge, nonce }),
      );
      return;
    }
    const requested = String(details.params.scope ?? '')
      .split(' ')
      .filter(Boolean);
    // Administrator rights are said plainly, and not offered to a user who cannot have them.
    const mayHoldAdmin = await mayHoldAdminRights(details, requested);
    const scopes = splitAdminScope(requested, mayHoldAdmin).granted.map((name) => ({
      name,
      description: name === ADMIN_SCOPE ? ADMIN_SCOPE_DESCRIPTION : (SCOPE_DESCRIPTIONS[name] ?? `Use ${name}`),
      warning: name === ADMIN_SCOPE,
    }));
    res.send(await renderPage('consent', { ...common, title: 'Allow access', scopes }));
  }

  // The second step of a sign-in (oidc/second-factors.ts): a one-time code, or enrolling an authenticator.
  const secondStep = createFactorPages({ provider, users, csrf, factors, passkeys, challenges, tickets, showLogin: show, allowFormActionTo });

  /** Whether the signed-in user may hold scope `admin`; the user is read only when `scopes` (all asked) name it. */
  const mayHoldAdminRights = async (details: Details, scopes: readonly string[]) =>
    scopes.includes(ADMIN_SCOPE) && !!details.session && userMayHoldAdmin(await users.find(details.session.accountId));

  async function grantConsent(details: Details): Promise<string> {
    const { prompt, params, session, grantId } = details;
    const grant = grantId
      ? await provider().Grant.find(grantId)
      : new (provider().Grant)({ accountId: session!.accountId, clientId: String(params.client_id) });
    if (!grant) throw new TallyError(400, 'grant_not_found', 'This sign-in request is no longer valid.');
    const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    const mayHoldAdmin = await mayHoldAdminRights(details, [...(missing.missingOIDCScope ?? []), ...Object.values(missing.missingResourceScopes ?? {}).flat()]);
    const oidcScopes = splitAdminScope(missing.missingOIDCScope ?? [], mayHoldAdmin);
    if (oidcScopes.granted.length) grant.addOIDCScope(oidcScopes.granted.join(' '));
    if (oidcScopes.withheld.length) grant.rejectOIDCScope(oidcScopes.withheld.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, requested] of Object.entries(missing.missingResourceScopes ?? {})) {
      const scopes = splitAdminScope(requested, mayHoldAdmin);
      if (scopes.granted.length) grant.addResourceScope(indicator, scopes.granted.join(' '));
      if (scopes.withheld.length) grant.rejectResourceScope(indicator, scopes.withheld.join(' '));
    }
    return grant.save();
  }

  router.get('/interaction/:uid', async (req: Request, res: Response) => {
    const details = await provider().interactionDetails(req, res);
    if (details.uid !== req.params.uid) throw new TallyError(400, 'interaction_mismatch', 'This sign-in request is not the one in progress.');
    await show(res, details);
  });

  // The passkey forms' script asks here for WebAuthn options and a challenge bound to this interaction.
  router.post('/interaction/:uid/passkey-challenge', parseForm, async (req: Request, res: Response) => {
    const details = await provider().interactionDetails(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (details.uid !== req.params.uid || details.prompt.name !== 'login')
      throw new TallyError(400, 'interaction_mismatch', 'This sign-in request is not the one in progress.');
    if (!csrf.verify(details.uid, body._csrf))
      throw new TallyError(403, 'invalid_csrf', 'This form has expired or was not sent by this site. Go back and try again.');
    res.set('cache-control', 'no-store').json(await secondStep.passkeyChallenge(details, body));
  });

  router.post('/interaction/:uid', parseForm, async (req: Request, res: Response) => {
    const details = await provider().interactionDetails(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (details.uid !== req.params.uid) throw new TallyError(400, 'interaction_mismatch', 'This sign-in request is not the one in progress.');
    if (!csrf.verify(details.uid, body._csrf))
      throw new TallyError(403, 'invalid_csrf', 'This form has expired or was not sent by this site. Go back and try again.');

    if (details.prompt.name === 'login' && body.ticket !== undefined) {
      await secondStep.submit(req, res, details, body);
      return;
    }
    if (details.prompt.name === 'login' && body.passkey_response !== undefined) {
      await secondStep.passwordless(req, res, details, body);
      return;
    }
    if (details.prompt.name === 'login') {
      const { username, password } = body;
      // Throttled and counted there (oidc/sign-in.ts); a refusal re-renders this page saying when to try again.
      const { user, refusal } = await signIn(username, password, req.ip);
      if (!user) {
        if (refusal.retryAfterSeconds) res.set('retry-after', String(refusal.retryAfterSeconds));
        await show(res, details, refusal.status, refusal.message, typeof username === 'string' ? username : undefined);
        return;
      }
      await secondStep.afterPassword(req, res, details, user);
      return;
    }

    if (body.decision === 'deny') {
      await provider().interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The user denied the request' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const grantId = await grantConsent(details);
    await provider().interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  return router;
}
