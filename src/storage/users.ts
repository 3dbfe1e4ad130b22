import { randomUUID } from 'node:crypto';
import { isUniqueViolation, type Db } from './database.js';
import type { Sql } from './sql.js';
import { decoyHash, hashSecret, verifySecret } from './passwords.js';
import { TallyError } from '../lib/errors.js';

export interface User {
  id: string;
  username: string;
  email: string | null;
  name: string | null;
  created_at: string;
}

/** A conflict the caller can resolve by choosing another name. */
export class DuplicateUsernameError extends TallyError {
  constructor(message: string) {
    super(409, 'duplicate_username', message, { field: 'username' });
  }
}

type Row = { id: string; username: string; email: string | null; name: string | null; createdAt: Date };

function toUser(row: Row): User {
  return { id: row.id, username: row.username, email: row.email, name: row.name, created_at: row.createdAt.toISOString() };
}

export function createUserStore(db: Db, sql: Sql) {
  return {
    async create(input: { username: string; password: string; email?: string | undefined; name?: string | undefined }): Promise<User> {
      const passwordHash = await hashSecret(input.password);
      try {
        const row = await db.user.create({
          data: { id: randomUUID(), username: input.username, email: input.email ?? null, name: input.name ?? null, passwordHash, createdAt: new Date() },
        });
        return toUser(row);
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateUsernameError(`username ${input.username} is taken`);
        throw error;
      }
    },

    async find(id: string): Promise<User | undefined> {
      const row = await sql.get<Row>(`SELECT "id", "username", "email", "name", "created_at" AS "createdAt" FROM "users" WHERE "id" = ?`, [id]);
      return row ? toUser(row) : undefined;
    },

    /** The user when the password matches; the same work is done when the username is unknown. */
    async authenticate(username: string, password: string): Promise<User | undefined> {
      const row = await db.user.findUnique({ where: { username } });
      const ok = await verifySecret(row?.passwordHash ?? (await decoyHash()), password);
      return row && ok ? toUser(row) : undefined;
    },

    async delete(id: string): Promise<boolean> {
      const { count } = await db.user.deleteMany({ where: { id } });
      return count > 0;
    },
  };
}

export type UserStore = ReturnType<typeof createUserStore>;
