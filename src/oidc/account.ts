import type { Account, FindAccount } from 'oidc-provider';
import type { UserStore } from '../storage/users.js';

/** oidc-provider's account lookup: standard claims from the users table. */
export function createFindAccount(users: UserStore): FindAccount {
  return async (_ctx, id): Promise<Account | undefined> => {
    const user = await users.find(id);
    if (!user) return undefined;
    return {
      accountId: user.id,
      claims: () => ({
        sub: user.id,
        preferred_username: user.username,
        ...(user.name ? { name: user.name } : {}),
        ...(user.email ? { email: user.email, email_verified: false } : {}),
      }),
    };
  };
}
