import { randomUUID } from 'node:crypto';
import { isUniqueViolation, type Db } from './database.js';
import type { Sql, SqlValue } from './sql.js';
import { decoyHash, hashSecret, verifySecret } from './passwords.js';
import { TallyError } from '../lib/errors.js';

export interface User {
  id: string;
  username: string;
  email: string | null;
  name: string | null;
  roles: string[];
  disabled: boolean;
  created_at: string;
}

/** A conflict the caller can resolve by choosing another name. */
export class DuplicateUsernameError extends TallyError {
  constructor(message: string) {
    super(409, 'duplicate_username', message, { field: 'username' });
  }
}

/** What may change in a user; a password is stored as its argon2id hash. */
export interface UserChanges {
  email?: string | null | undefined;
  name?: string | null | undefined;
  roles?: string[] | undefined;
  disabled?: boolean | undefined;
  password?: string | undefined;
}

// `roles` is a JSON array in a text column; `disabled` reads back as 0/1 from SQLite and a boolean from PostgreSQL.
type Row = { id: string; username: string; email: string | null; name: string | null; roles: string; disabled: boolean | number; createdAt: Date };

const COLUMNS = `"id", "username", "email", "name", "roles", "disabled", "created_at" AS "createdAt"`;

function toUser(row: Row): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    name: row.name,
    roles: JSON.parse(row.roles) as string[],
    disabled: Boolean(row.disabled),
    created_at: row.createdAt.toISOString(),
  };
}

/** `text` as a LIKE pattern matching itself anywhere, with `!` escaping `%`, `_` and `!`. */
function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

export function createUserStore(db: Db, sql: Sql) {
  return {
    async create(input: {
      username: string;
      password: string;
      email?: string | undefined;
      name?: string | undefined;
      roles?: string[] | undefined;
    }): Promise<User> {
      const passwordHash = await hashSecret(input.password);
      try {
        const row = await db.user.create({
          data: {
            id: randomUUID(),
            username: input.username,
            email: input.email ?? null,
            name: input.name ?? null,
            roles: JSON.stringify(input.roles ?? []),
            passwordHash,
            createdAt: new Date(),
          },
        });
        return toUser(row);
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateUsernameError(`username ${input.username} is taken`);
        throw error;
      }
    },

    async find(id: string): Promise<User | undefined> {
      const row = await sql.get<Row>(`SELECT ${COLUMNS} FROM "users" WHERE "id" = ?`, [id]);
      return row ? toUser(row) : undefined;
    },

    /**
     * Users in creation order, after the cursor; `q` matches a part of the username, email or name,
     * case-insensitively (LOWER on both sides: SQLite's LIKE ignores only ASCII case, PostgreSQL's
     * none), its `%` and `_` taken literally.
     */
    async list(limit: number, after?: { createdAt: Date; id: string }, q?: string): Promise<User[]> {
      const where: string[] = [];
      const params: SqlValue[] = [];
      if (q) {
        where.push(`(LOWER("username") LIKE ? ESCAPE '!' OR LOWER("email") LIKE ? ESCAPE '!' OR LOWER("name") LIKE ? ESCAPE '!')`);
        const pattern = containsPattern(q);
        params.push(pattern, pattern, pattern);
      }
      if (after) {
        where.push(`("created_at" > ? OR ("created_at" = ? AND "id" > ?))`);
        params.push(after.createdAt, after.createdAt, after.id);
      }
      const rows = await sql.all<Row>(
        `SELECT ${COLUMNS} FROM "users" ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY "created_at", "id" LIMIT ?`,
        [...params, limit],
      );
      return rows.map(toUser);
    },

    /** The user as changed; undefined when there is none with this id. */
    async update(id: string, changes: UserChanges): Promise<User | undefined> {
      const data = {
        ...(changes.email !== undefined ? { email: changes.email } : {}),
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.roles !== undefined ? { roles: JSON.stringify(changes.roles) } : {}),
        ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}),
        ...(changes.password !== undefined ? { passwordHash: await hashSecret(changes.password) } : {}),
      };
      if (Object.keys(data).length === 0) return this.find(id);
      const { count } = await db.user.updateMany({ where: { id }, data });
      return count ? this.find(id) : undefined;
    },

    /**
     * The user when the password matches and the account is not disabled; the same work is done,
     * and the same answer given, when the username is unknown or the account disabled.
     */
    async authenticate(username: string, password: string): Promise<User | undefined> {
      // A prepared statement, not Prisma: every sign-in reads this row (bench/ANALYSIS.md).
      const row = await sql.get<Row & { passwordHash: string }>(`SELECT ${COLUMNS}, "password_hash" AS "passwordHash" FROM "users" WHERE "username" = ?`, [
        username,
      ]);
      const ok = await verifySecret(row?.passwordHash ?? (await decoyHash()), password);
      return row && ok && !row.disabled ? toUser(row) : undefined;
    },

    /** Deletes the user and their second factors. */
    async delete(id: string): Promise<boolean> {
      const [, { count }] = await db.$transaction([db.userFactor.deleteMany({ where: { userId: id } }), db.user.deleteMany({ where: { id } })]);
      return count > 0;
    },
  };
}

export type UserStore = ReturnType<typeof createUserStore>;
