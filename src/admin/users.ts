import type { z } from 'zod';
import type { Runtime } from '../runtime.js';
import { notFound, parseInput } from './input.js';
import { createUserBody, type userView } from './schemas.js';
import { THROTTLE_POLICIES } from '../tokens/throttle.js';

// The operations on users, for the admin API and the CLI.

export type NewUser = z.output<typeof createUserBody>;
export type UserView = z.output<typeof userView>;

/** Parses a new user; pure, so the CLI refuses bad input before it opens the database. */
export function parseNewUser(input: unknown): NewUser {
  return parseInput(createUserBody, input);
}

/** Stores the user with an argon2id hash of the password; a taken username is a 409 (duplicate_username). */
export function createUser(runtime: Runtime, user: NewUser): Promise<UserView> {
  return runtime.users.create(user);
}

export async function getUser(runtime: Runtime, id: string): Promise<UserView> {
  const user = await runtime.users.find(id);
  if (!user) throw notFound('user', id);
  return user;
}

/** Every token of the user becomes inactive first, so none outlives the account. */
export async function deleteUser(runtime: Runtime, id: string): Promise<void> {
  if (!(await runtime.users.find(id))) throw notFound('user', id);
  await runtime.revocation.revokeScope({ subject: id });
  await runtime.users.delete(id);
}

/** Clears the account's failed sign-ins (tokens/throttle.ts): a lockout ends at once. */
export async function unlockUser(runtime: Runtime, id: string): Promise<void> {
  const user = await runtime.users.find(id);
  if (!user) throw notFound('user', id);
  await runtime.throttle.clear(THROTTLE_POLICIES.account, user.username);
}
