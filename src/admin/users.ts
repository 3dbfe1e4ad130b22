import type { z } from 'zod';
import type { Runtime } from '../runtime.js';
import { notFound, parseInput } from './input.js';
import { pageOf, type Page, type PageOf } from './pagination.js';
import { createUserBody, userPatchBody, userQuery, type userView } from './schemas.js';
import { THROTTLE_POLICIES } from '../tokens/throttle.js';

// The operations on users, for the admin API and the CLI. A user as shown never has a password hash.

export type NewUser = z.output<typeof createUserBody>;
export type UserPatch = z.output<typeof userPatchBody>;
export type UserView = z.output<typeof userView>;
export type UserFilter = z.output<typeof userQuery>;

/** Parses a new user; pure, so the CLI refuses bad input before it opens the database. */
export function parseNewUser(input: unknown): NewUser {
  return parseInput(createUserBody, input);
}

export const parseUserPatch = (input: unknown): UserPatch => parseInput(userPatchBody, input);
export const parseUserFilter = (query: unknown): UserFilter => parseInput(userQuery, query, 'query');

/** Stores the user with an argon2id hash of the password; a taken username is a 409 (duplicate_username). */
export function createUser(runtime: Runtime, user: NewUser): Promise<UserView> {
  return runtime.users.create(user);
}

/** Oldest first; `q` matches a part of the username, email or name, case-insensitively. */
export async function listUsers(runtime: Runtime, filter: UserFilter, page: Page): Promise<PageOf<UserView>> {
  const rows = await runtime.users.list(page.limit + 1, page.after, filter.q);
  return pageOf(
    rows,
    page.limit,
    (u) => ({ createdAt: new Date(u.created_at), id: u.id }),
    (u) => u,
  );
}

export async function getUser(runtime: Runtime, id: string): Promise<UserView> {
  const user = await runtime.users.find(id);
  if (!user) throw notFound('user', id);
  return user;
}

/**
 * Changes a user. Disabling also makes every token of theirs inactive (as deletion does); the
 * account is marked first, so that no sign-in slips in between. Re-enabling revives no token.
 */
export async function updateUser(runtime: Runtime, id: string, patch: UserPatch): Promise<UserView> {
  const user = await runtime.users.update(id, patch);
  if (!user) throw notFound('user', id);
  if (patch.disabled === true) await runtime.revocation.revokeScope({ subject: id });
  return user;
}

/** Every token of the user becomes inactive first, so none outlives the account. */
export async function deleteUser(runtime: Runtime, id: string): Promise<void> {
  if (!(await runtime.users.find(id))) throw notFound('user', id);
  await runtime.revocation.revokeScope({ subject: id });
  await runtime.users.delete(id);
}

/**
 * Removes every second factor of the user (a lost device): the next sign-in asks the password alone, or
 * leads to enrolling an authenticator where a client requires two factors. Wrong codes counted so far go too.
 */
export async function resetUserFactors(runtime: Runtime, id: string, by: 'admin_api' | 'cli'): Promise<void> {
  if (!(await runtime.users.find(id))) throw notFound('user', id);
  const removed = await runtime.factors.removeAll(id);
  await runtime.throttle.clear(THROTTLE_POLICIES.secondFactor, id);
  runtime.security.report('factor_removed', { user_id: id, kind: 'all', by, removed });
}

/** Clears the account's failed sign-ins (tokens/throttle.ts): a lockout ends at once. */
export async function unlockUser(runtime: Runtime, id: string): Promise<void> {
  const user = await runtime.users.find(id);
  if (!user) throw notFound('user', id);
  await runtime.throttle.clear(THROTTLE_POLICIES.account, user.username);
}
