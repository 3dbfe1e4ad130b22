/**
 * PostgreSQL text cannot hold U+0000 and rejects any query parameter containing one (error 22021),
 * where SQLite just finds nothing. No stored value can hold one, so a lookup or a conditional write by
 * such a value (a client_id, a username, a token, an id in an admin URL) matches nothing, as on
 * SQLite, instead of failing. The one place of that rule: the prepared statements (sql.ts) and the
 * Prisma client (database.ts) both apply it from here.
 */

export function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(containsNul);
  return typeof value === 'object' && value !== null && !(value instanceof Date) && Object.values(value).some(containsNul);
}

/** What a Prisma read or conditional write answers when its filter can match no row. */
const NO_MATCH: Record<string, unknown> = { findUnique: null, findFirst: null, findMany: [], count: 0, updateMany: { count: 0 }, deleteMany: { count: 0 } };

type PrismaOperation = { operation: string; args: unknown; query: (args: unknown) => Promise<unknown> };

/** Prisma query extension (PostgreSQL): a filter holding a NUL matches nothing. */
export function matchNothingOnNul({ operation, args, query }: PrismaOperation): Promise<unknown> {
  if (operation in NO_MATCH && containsNul((args as { where?: unknown } | undefined)?.where)) return Promise.resolve(NO_MATCH[operation]);
  return query(args);
}
