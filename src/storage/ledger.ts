import type { Db } from './database.js';
import type { Sql } from './sql.js';
import { createClaimTurnBatch } from './turn-batch.js';
import { TOKEN_FORMATS, type TokenFormat, type TokenStatus, type TokenType } from '../lib/enums.js';

export type EntryType = TokenType;
export const ENTRY_FORMATS = TOKEN_FORMATS;
export type EntryFormat = TokenFormat;
export type EntryStatus = TokenStatus;

/** A ledger entry as the admin API and the CLI show it: metadata only, never a value or payload. */
export interface LedgerEntry {
  id: string;
  type: EntryType;
  format: EntryFormat;
  status: EntryStatus;
  subject: string | null;
  client_id: string;
  grant_id: string | null;
  scope: string | null;
  audience: string | null;
  created_at: string;
  expires_at: string;
  redeemed_at: string | null;
  /** The key or certificate a sender-constrained token is bound to (RFC 9449, RFC 8705); absent when unbound. */
  cnf?: { jkt?: string; 'x5t#S256'?: string };
}

/**
 * A ledger row, as the prepared statements (COLUMNS) and Prisma's model both return it: the same
 * fields, dates as Dates. The one row type of this store.
 */
export interface LedgerRow extends Omit<NewEntry, 'type' | 'format'> {
  type: EntryType;
  format: EntryFormat;
  status: EntryStatus;
  redeemedAt: Date | null;
  revokedAt: Date | null;
}

const COLUMNS = `"id", "lookup_hash" AS "lookupHash", "type", "format", "status", "subject", "client_id" AS "clientId",
  "grant_id" AS "grantId", "session_uid" AS "sessionUid", "scope", "audience", "payload", "user_code_hash" AS "userCodeHash",
  "cnf_jkt" AS "cnfJkt", "cnf_x5t_s256" AS "cnfX5tS256", "created_at" AS "createdAt", "expires_at" AS "expiresAt", "redeemed_at" AS "redeemedAt", "revoked_at" AS "revokedAt"`;

/** Either source's row as this store's: the columns are the same (Prisma's model types its text columns as plain strings). */
const toRow = <T extends object>(row: T | null | undefined): LedgerRow | null => (row ?? null) as LedgerRow | null;

const INSERT = `INSERT INTO "token_entries" ("id", "lookup_hash", "type", "format", "status", "subject", "client_id", "grant_id", "session_uid",
  "scope", "audience", "payload", "user_code_hash", "cnf_jkt", "cnf_x5t_s256", "created_at", "expires_at")
  VALUES (?, ?, ?, ?, 'valid', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
// Saved again (a device code as the user acts on it): the payload and what it names change, not its identity.
const UPSERT = `${INSERT} ON CONFLICT ("lookup_hash") DO UPDATE SET "subject" = excluded."subject", "grant_id" = excluded."grant_id",
  "session_uid" = excluded."session_uid", "scope" = excluded."scope", "audience" = excluded."audience", "payload" = excluded."payload",
  "user_code_hash" = excluded."user_code_hash", "cnf_jkt" = excluded."cnf_jkt", "cnf_x5t_s256" = excluded."cnf_x5t_s256",
  "expires_at" = excluded."expires_at"`;
const insertParams = (e: NewEntry) => [
  e.id,
  e.lookupHash,
  e.type,
  e.format,
  e.subject,
  e.clientId,
  e.grantId,
  e.sessionUid,
  e.scope,
  e.audience,
  e.payload,
  e.userCodeHash,
  e.cnfJkt,
  e.cnfX5tS256,
  e.createdAt,
  e.expiresAt,
];

export function toLedgerEntry(row: LedgerRow): LedgerEntry {
  return {
    id: row.id,
    type: row.type,
    format: row.format,
    status: row.status,
    subject: row.subject,
    client_id: row.clientId,
    grant_id: row.grantId,
    scope: row.scope,
    audience: row.audience,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt.toISOString(),
    redeemed_at: row.redeemedAt?.toISOString() ?? null,
    ...(row.cnfJkt || row.cnfX5tS256 ? { cnf: { ...(row.cnfJkt ? { jkt: row.cnfJkt } : {}), ...(row.cnfX5tS256 ? { 'x5t#S256': row.cnfX5tS256 } : {}) } } : {}),
  };
}

/** Statuses a revocation changes: valid, and redeemed (a used token stays findable for reuse detection). */
const REVOCABLE_STATUSES: EntryStatus[] = ['valid', 'redeemed'];
const REVOCABLE_LIST = REVOCABLE_STATUSES.map((status) => `'${status}'`).join(', ');

export interface EntryFields {
  subject: string | null;
  grantId: string | null;
  sessionUid: string | null;
  scope: string | null;
  audience: string | null;
  payload: string | null;
  userCodeHash: string | null;
  /** The thumbprint of the DPoP key (`cnf.jkt`) or client certificate (`cnf.x5t#S256`) a token is bound to; null when unbound. */
  cnfJkt: string | null;
  cnfX5tS256: string | null;
  expiresAt: Date;
}

export interface NewEntry extends EntryFields {
  id: string;
  lookupHash: string;
  type: EntryType;
  format: EntryFormat;
  clientId: string;
  createdAt: Date;
}

export interface EntryFilter {
  subject?: string | undefined;
  clientId?: string | undefined;
  grantId?: string | undefined;
  status?: EntryStatus | undefined;
  type?: EntryType | undefined;
}

/** Bulk revocation scope: every token matching all the given fields (at least one). */
export interface RevocationScope {
  subject?: string | undefined;
  clientId?: string | undefined;
  grantId?: string | undefined;
}

function scopeWhere(scope: RevocationScope) {
  return {
    ...(scope.subject !== undefined ? { subject: scope.subject } : {}),
    ...(scope.clientId !== undefined ? { clientId: scope.clientId } : {}),
    ...(scope.grantId !== undefined ? { grantId: scope.grantId } : {}),
  };
}

/**
 * The ledger's queries. Rules (what counts as active, who may revoke) live in the ledger manager
 * (src/tokens/ledger-manager.ts). What every token request does runs as prepared statements (`sql`);
 * listing, bulk changes and pruning use Prisma.
 */
export interface LedgerStore {
  /** Most tokens are saved once: insert, and update only when the token is saved again (device codes). */
  upsert(entry: NewEntry): Promise<void>;
  create(entry: NewEntry): Promise<void>;
  findByLookupHash(lookupHash: string): Promise<LedgerRow | null>;
  findByUserCodeHash(userCodeHash: string, type: EntryType): Promise<LedgerRow | null>;
  findById(id: string): Promise<LedgerRow | null>;
  /** valid → redeemed; false when another redemption got there first. */
  redeem(lookupHash: string): Promise<boolean>;
  /** A live entry becomes revoked; returns its format, or undefined when no live entry had this hash. */
  revokeByLookupHash(lookupHash: string): Promise<EntryFormat | undefined>;
  /** The entry, and whether this call revoked it (false: it was not live any more). */
  revokeById(id: string): Promise<{ row: LedgerRow; revoked: boolean } | null>;
  /** Every live entry of the scope created at or before `at` becomes inactive; returns how many, per format. */
  deactivate(scope: RevocationScope, at: Date, type?: EntryType): Promise<Record<EntryFormat, number>>;
  /** How many entries `deactivate(scope, at)` would change now (the console's preview of a bulk revocation). */
  countDeactivatable(scope: RevocationScope, at: Date): Promise<number>;
  /** Newest first; the cursor is the last entry's (created_at, id), so pages stay stable under inserts. */
  list(filter: EntryFilter, limit: number, after?: { createdAt: Date; id: string }): Promise<LedgerRow[]>;
  /** Deletes up to `batchSize` entries whose token expired before `before`; returns how many. */
  pruneBatch(before: Date, batchSize: number): Promise<number>;
  count(): Promise<number>;
}

const REDEEM = `UPDATE "token_entries" SET "status" = 'redeemed', "redeemed_at" = ? WHERE "lookup_hash" = ? AND "status" = 'valid'`;
// PostgreSQL: the redemptions asked for in one turn of the event loop, in one statement (one round trip
// and one commit instead of one each, as the turn's inserts and reads); RETURNING names the entries it
// redeemed. ANY takes the row locks in the order of the scan (the unique index's, or the table's),
// whatever the order asked, so that two replicas' statements sharing entries (a refresh token used at
// both at once) cannot deadlock.
const REDEEM_MANY = `UPDATE "token_entries" SET "status" = 'redeemed', "redeemed_at" = ?
  WHERE "lookup_hash" = ANY(ARRAY(SELECT json_array_elements_text(?::json))) AND "status" = 'valid'
  RETURNING "lookup_hash" AS "lookupHash"`;
const MAX_REDEEM_BATCH = 200;

/** valid → redeemed for each lookup hash asked for; true for the ask that made the change (one per entry and turn). */
function redemptions(sql: Sql): (lookupHash: string) => Promise<boolean> {
  const redeemOne = async (lookupHash: string) => (await sql.run(REDEEM, [new Date(), lookupHash])) === 1;
  // SQLite: the writes of a turn already share one commit (sql.ts).
  if (sql.dialect === 'sqlite') return redeemOne;
  const redeemInTurn = createClaimTurnBatch<string>(
    (lookupHash) => lookupHash,
    async (lookupHashes) => {
      const rows = await sql.all<{ lookupHash: string }>(REDEEM_MANY, [new Date(), JSON.stringify(lookupHashes)]);
      return new Set(rows.map((row) => row.lookupHash));
    },
    MAX_REDEEM_BATCH,
  );
  // A NUL would not survive the JSON: such a hash (none is made: they are digests) goes alone.
  return (lookupHash) => (lookupHash.includes('\0') ? redeemOne(lookupHash) : redeemInTurn(lookupHash));
}

export function createLedgerStore(db: Db, sql: Sql): LedgerStore {
  const redeem = redemptions(sql);
  const revocable = { in: REVOCABLE_STATUSES };
  /** What a bulk revocation at `at` changes: the scope's live entries created at or before it. */
  const deactivatable = (scope: RevocationScope, at: Date) => ({ ...scopeWhere(scope), status: revocable, createdAt: { lte: at } });
  return {
    async upsert(entry) {
      await sql.run(UPSERT, insertParams(entry));
    },

    async create(entry) {
      await sql.run(INSERT, insertParams(entry));
    },

    async findByLookupHash(lookupHash) {
      return toRow(await sql.get<LedgerRow>(`SELECT ${COLUMNS} FROM "token_entries" WHERE "lookup_hash" = ?`, [lookupHash]));
    },

    async findByUserCodeHash(userCodeHash, type) {
      return toRow(await sql.get<LedgerRow>(`SELECT ${COLUMNS} FROM "token_entries" WHERE "user_code_hash" = ? AND "type" = ? LIMIT 1`, [userCodeHash, type]));
    },

    async findById(id) {
      return toRow(await db.tokenEntry.findUnique({ where: { id } }));
    },

    redeem,

    async revokeByLookupHash(lookupHash) {
      const row = await sql.get<{ format: EntryFormat }>(
        `UPDATE "token_entries" SET "status" = 'revoked', "revoked_at" = ? WHERE "lookup_hash" = ? AND "status" IN (${REVOCABLE_LIST}) RETURNING "format"`,
        [new Date(), lookupHash],
      );
      return row?.format;
    },

    async revokeById(id) {
      const { count } = await db.tokenEntry.updateMany({ where: { id, status: revocable }, data: { status: 'revoked', revokedAt: new Date() } });
      const row = toRow(await db.tokenEntry.findUnique({ where: { id } }));
      return row && { row, revoked: count > 0 };
    },

    async deactivate(scope, at, type) {
      const counts: Record<EntryFormat, number> = { reference: 0, jwt: 0 };
      for (const format of ENTRY_FORMATS) {
        const { count } = await db.tokenEntry.updateMany({
          where: { ...deactivatable(scope, at), ...(type ? { type } : {}), format },
          data: { status: 'inactive', revokedAt: at },
        });
        counts[format] = count;
      }
      return counts;
    },

    countDeactivatable(scope, at) {
      return db.tokenEntry.count({ where: deactivatable(scope, at) });
    },

    async list(filter, limit, after) {
      const rows = await db.tokenEntry.findMany({
        where: {
          ...(filter.subject !== undefined ? { subject: filter.subject } : {}),
          ...(filter.clientId !== undefined ? { clientId: filter.clientId } : {}),
          ...(filter.grantId !== undefined ? { grantId: filter.grantId } : {}),
          ...(filter.status !== undefined ? { status: filter.status } : {}),
          ...(filter.type !== undefined ? { type: filter.type } : {}),
          ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit,
      });
      return rows as LedgerRow[];
    },

    async pruneBatch(before, batchSize) {
      const rows = await db.tokenEntry.findMany({ where: { expiresAt: { lt: before } }, select: { id: true }, take: batchSize });
      if (rows.length === 0) return 0;
      const { count } = await db.tokenEntry.deleteMany({ where: { id: { in: rows.map((r) => r.id) }, expiresAt: { lt: before } } });
      return count;
    },

    count() {
      return db.tokenEntry.count();
    },
  };
}
