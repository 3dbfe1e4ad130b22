import { randomUUID } from 'node:crypto';
import type { Db } from './database.js';
import type { RevocationScope } from './ledger.js';
import type { Sql } from './sql.js';

/** A bulk revocation's second pass, waiting to run (see prisma/schema.prisma, RevocationPass). */
export interface RevocationPassRow {
  id: string;
  subject: string | null;
  clientId: string | null;
  grantId: string | null;
  revokedAt: Date;
  dueAt: Date;
}

/** Second passes of bulk revocations, recorded until some process has run them. */
export interface RevocationPassStore {
  record(scope: RevocationScope, revokedAt: Date, dueAt: Date): Promise<void>;
  /** Passes due at `now`, oldest first. */
  listDue(now: Date, limit: number): Promise<RevocationPassRow[]>;
  /** Takes a due pass until `until`; false when another process took it first (or it is done). */
  claim(id: string, now: Date, until: Date): Promise<boolean>;
  /** A pass run: it is gone. */
  complete(id: string): Promise<void>;
  /** How many are waiting (tests, diagnostics). */
  count(): Promise<number>;
}

const COLUMNS = `"id", "subject", "client_id" AS "clientId", "grant_id" AS "grantId", "revoked_at" AS "revokedAt", "due_at" AS "dueAt"`;

/** Every server process polls for due passes: prepared statements. */
export function createRevocationPassStore(db: Db, sql: Sql): RevocationPassStore {
  return {
    async record(scope, revokedAt, dueAt) {
      await sql.run(`INSERT INTO "revocation_passes" ("id", "subject", "client_id", "grant_id", "revoked_at", "due_at") VALUES (?, ?, ?, ?, ?, ?)`, [
        randomUUID(),
        scope.subject ?? null,
        scope.clientId ?? null,
        scope.grantId ?? null,
        revokedAt,
        dueAt,
      ]);
    },

    listDue(now, limit) {
      return sql.all<RevocationPassRow>(`SELECT ${COLUMNS} FROM "revocation_passes" WHERE "due_at" <= ? ORDER BY "due_at" LIMIT ?`, [now, limit]);
    },

    async claim(id, now, until) {
      // One statement, so that of processes racing for it one wins: the others no longer see it due.
      return (await sql.run(`UPDATE "revocation_passes" SET "due_at" = ? WHERE "id" = ? AND "due_at" <= ?`, [until, id, now])) === 1;
    },

    async complete(id) {
      await sql.run(`DELETE FROM "revocation_passes" WHERE "id" = ?`, [id]);
    },

    count() {
      return db.revocationPass.count();
    },
  };
}
