import { interactionPolicy, type Account, type AccountClaims, type FindAccount } from 'oidc-provider';
import { cheapToSpread } from '../lib/object-shapes.js';
import type { UserStore } from '../storage/users.js';
import { ACR, needsTwoFactors } from './second-factors.js';

/**
 * oidc-provider's account lookup: standard claims from the users table. A disabled user is no
 * account: their refresh tokens and codes are refused, and their session signs in again (below).
 */
export function createFindAccount(users: UserStore): FindAccount {
  return async (_ctx, id): Promise<Account | undefined> => {
    const user = await users.find(id);
    if (!user || user.disabled) return undefined;
    return {
      accountId: user.id,
      // oidc-provider spreads these into the ID token's claims (lib/object-shapes.ts).
      claims: () => {
        const claims: AccountClaims = { sub: user.id, preferred_username: user.username };
        if (user.name) claims.name = user.name;
        if (user.email) {
          claims.email = user.email;
          claims.email_verified = false;
        }
        return cheapToSpread(claims);
      },
    };
  };
}

/**
 * oidc-provider's interaction policy, with one more reason to show the login page: a session whose
 * account was disabled or deleted since it signed in (without it, the session would still be given
 * codes, or the consent checks would fail on the missing account).
 */
export function signInPolicy(): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  const accountGone = (ctx: { oidc: { session?: { accountId?: string | undefined }; account?: unknown } }) =>
    Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account;
  policy
    .get('login')!
    .checks.add(new interactionPolicy.Check('account_unavailable', 'the signed-in account is no longer available', 'login_required', accountGone), 0);
  // A session signed in with a password only steps up when the client needs two factors (require_mfa, or acr_values).
  const mustStepUp = (ctx: {
    oidc: { session?: { accountId?: string | undefined; acr?: string | undefined }; client?: unknown; params?: Record<string, unknown> };
  }) =>
    Boolean(ctx.oidc.session?.accountId) &&
    ctx.oidc.session?.acr !== ACR.mfa &&
    needsTwoFactors(ctx.oidc.client as { require_mfa?: unknown } | undefined, ctx.oidc.params?.acr_values);
  policy.get('login')!.checks.add(new interactionPolicy.Check('mfa_required', 'the client requires a second factor', 'login_required', mustStepUp));
  return policy;
}
