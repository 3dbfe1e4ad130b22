import { isUniqueViolation, type Db } from './database.js';
import type { Sql } from './sql.js';

/**
 * An event's kind names the fields it matches, joined by '+' in a fixed order (subject, client, grant),
 * and its value their values joined by U+001F (unit separator): `subject+client` / `alice\x1fapp`
 * revokes alice's tokens of app. Not a NUL: PostgreSQL text cannot hold one (error 22021).
 */
export type EventKind = string;

const FIELDS = ['subject', 'client', 'grant'] as const;
const VALUE_SEPARATOR = '\x1f';

export function eventKey(match: { subject?: string | undefined; clientId?: string | undefined; grantId?: string | undefined }) {
  const values = { subject: match.subject, client: match.clientId, grant: match.grantId };
  const present = FIELDS.filter((f) => values[f] !== undefined);
  return { kind: present.join('+'), value: present.map((f) => values[f]).join(VALUE_SEPARATOR) };
}

export interface RevocationEventRow {
  kind: string;
  value: string;
  revokedAt: Date;
}

export interface RevokedTokenRow {
  lookupHash: string;
  type: string;
  reason: string;
  revokedAt: Date;
  expiresAt: Date;
}

/** The revoked-token list and the revocation events that stateless tokens are checked against. */
export function createRevocationStore(db: Db, sql: Sql) {
  return {
    /** Lists a token; false when it is already listed with that reason (a lost race). */
    async add(lookupHash: string, type: string, reason: 'revoked' | 'consumed', expiresAt: Date): Promise<boolean> {
      try {
        await sql.run(`INSERT INTO "revoked_tokens" ("lookup_hash", "type", "reason", "revoked_at", "expires_at") VALUES (?, ?, ?, ?, ?)`, [
          lookupHash,
          type,
          reason,
          new Date(),
          expiresAt,
        ]);
        return true;
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        if (reason === 'revoked') await sql.run(`UPDATE "revoked_tokens" SET "reason" = 'revoked' WHERE "lookup_hash" = ?`, [lookupHash]);
        return false;
      }
    },

    async find(lookupHash: string): Promise<RevokedTokenRow | undefined> {
      return sql.get<RevokedTokenRow>(
        `SELECT "lookup_hash" AS "lookupHash", "type", "reason", "revoked_at" AS "revokedAt", "expires_at" AS "expiresAt" FROM "revoked_tokens" WHERE "lookup_hash" = ?`,
        [lookupHash],
      );
    },

    /** Records (or moves forward) the time before which every token of `kind`/`value` is inactive. */
    async recordEvent(kind: EventKind, value: string, revokedAt: Date, expiresAt: Date): Promise<void> {
      // No transaction: on PostgreSQL a unique violation aborts the transaction it happens in, so the
      // update after a lost race must run on its own. Each statement is atomic; the update only moves forward.
      const existing = await db.revocationEvent.findUnique({ where: { kind_value: { kind, value } } });
      if (!existing) {
        try {
          await db.revocationEvent.create({ data: { kind, value, revokedAt, expiresAt } });
          return;
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
        }
      }
      await db.revocationEvent.updateMany({ where: { kind, value, revokedAt: { lt: revokedAt } }, data: { revokedAt, expiresAt } });
    },

    /** The events that could match a token of this subject, client and grant: one per combination. */
    findEvents(match: { subject?: string | undefined; clientId?: string | undefined; grantId?: string | undefined }): Promise<RevocationEventRow[]> {
      const fields = [
        ['subject', match.subject],
        ['clientId', match.clientId],
        ['grantId', match.grantId],
      ].filter(([, v]) => v) as [string, string][];
      const or = [];
      for (let mask = 1; mask < 1 << fields.length; mask++) {
        or.push(eventKey(Object.fromEntries(fields.filter((_, i) => mask & (1 << i)))));
      }
      if (or.length === 0) return Promise.resolve([]);
      // One statement per number of combinations (1, 3 or 7), each prepared once.
      const text = `SELECT "kind", "value", "revoked_at" AS "revokedAt" FROM "revocation_events" WHERE ${or.map(() => '("kind" = ? AND "value" = ?)').join(' OR ')}`;
      return sql.all<RevocationEventRow>(text, or.flatMap((k) => [k.kind, k.value]));
    },

    async pruneBatch(before: Date, batchSize: number): Promise<number> {
      const rows = await db.revokedToken.findMany({ where: { expiresAt: { lt: before } }, select: { lookupHash: true }, take: batchSize });
      const events = rows.length < batchSize ? await db.revocationEvent.deleteMany({ where: { expiresAt: { lt: before } } }) : { count: 0 };
      if (rows.length === 0) return events.count;
      const { count } = await db.revokedToken.deleteMany({ where: { lookupHash: { in: rows.map((r) => r.lookupHash) } } });
      return count + events.count;
    },
  };
}

export type RevocationStore = ReturnType<typeof createRevocationStore>;
