import type { Db } from './database.js';
import type { RevocationScope } from './ledger.js';
import type { CacheableRead } from './revoked-tokens.js';
import { isDuplicateKey, type Sql } from './sql.js';

/**
 * An event's kind names the fields it matches, joined by '+' in a fixed order (subject, client, grant),
 * and its value their values joined by U+001F (unit separator): `subject+client` / `alice\x1fapp`
 * revokes alice's tokens of app. Not a NUL: PostgreSQL text cannot hold one (error 22021).
 */
export type EventKind = string;

const FIELDS = ['subject', 'client', 'grant'] as const;
const VALUE_SEPARATOR = '\x1f';

export function eventKey(match: RevocationScope) {
  const values = { subject: match.subject, client: match.clientId, grant: match.grantId };
  const present = FIELDS.filter((f) => values[f] !== undefined);
  return { kind: present.join('+'), value: present.map((f) => values[f]).join(VALUE_SEPARATOR) };
}

/** A bulk revocation: every token of `kind`/`value` issued at or before `revokedAt` is inactive. */
export interface RevocationEventRow {
  kind: EventKind;
  value: string;
  revokedAt: Date;
}

/** The revocation events that stateless tokens (which have no ledger entry) are checked against. */
export interface RevocationEventStore {
  /** Records (or moves forward) the time before which every token of `kind`/`value` is inactive. */
  record(kind: EventKind, value: string, revokedAt: Date, expiresAt: Date): Promise<void>;
  /** The events that could match a token of this subject, client and grant: one per combination. */
  findMatching(match: RevocationScope, options?: CacheableRead): Promise<RevocationEventRow[]>;
  /** Deletes the events no token can match any more (expired before `before`); returns how many. */
  prune(before: Date): Promise<number>;
}

export function createRevocationEventStore(db: Db, sql: Sql): RevocationEventStore {
  return {
    async record(kind, value, revokedAt, expiresAt) {
      // No transaction: on PostgreSQL a unique violation aborts the transaction it happens in, so the
      // update after a lost race must run on its own. Each statement is atomic; the update only moves forward.
      const existing = await db.revocationEvent.findUnique({ where: { kind_value: { kind, value } } });
      if (!existing) {
        try {
          await db.revocationEvent.create({ data: { kind, value, revokedAt, expiresAt } });
          return;
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
        }
      }
      await db.revocationEvent.updateMany({ where: { kind, value, revokedAt: { lt: revokedAt } }, data: { revokedAt, expiresAt } });
    },

    findMatching(match) {
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
      return sql.all<RevocationEventRow>(
        text,
        or.flatMap((k) => [k.kind, k.value]),
      );
    },

    async prune(before) {
      return (await db.revocationEvent.deleteMany({ where: { expiresAt: { lt: before } } })).count;
    },
  };
}
