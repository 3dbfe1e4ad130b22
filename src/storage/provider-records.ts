import type { Db } from './database.js';
import type { Sql } from './sql.js';

/** One of oidc-provider's other records (Session, Grant, Interaction, ...), its payload sealed by the caller. */
export interface ProviderRecordRow {
  /** The hash of the record's id (the caller hashes: the store never sees an id). */
  id: string;
  payload: string;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

export interface NewProviderRecord {
  model: string;
  id: string;
  payload: string;
  grantId: string | null;
  uid: string | null;
  expiresAt: Date | null;
}

export interface ProviderRecordStore {
  upsert(record: NewProviderRecord): Promise<void>;
  find(model: string, id: string): Promise<ProviderRecordRow | undefined>;
  findByUid(model: string, uid: string): Promise<ProviderRecordRow | undefined>;
  consume(model: string, id: string): Promise<void>;
  delete(model: string, id: string): Promise<void>;
  deleteByGrantId(model: string, grantId: string): Promise<void>;
  /** Deletes up to `batchSize` records that expired before `before`; returns how many. */
  pruneBatch(before: Date, batchSize: number): Promise<number>;
}

const COLUMNS = `"id", "payload", "expires_at" AS "expiresAt", "consumed_at" AS "consumedAt"`;

/** Every protocol request reads or writes some of these (sessions, grants, interactions): prepared statements; pruning uses Prisma. */
export function createProviderRecordStore(db: Db, sql: Sql): ProviderRecordStore {
  return {
    async upsert({ model, id, payload, grantId, uid, expiresAt }) {
      await sql.run(
        `INSERT INTO "provider_records" ("model", "id", "payload", "grant_id", "uid", "expires_at") VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT ("model", "id") DO UPDATE SET "payload" = excluded."payload", "grant_id" = excluded."grant_id", "uid" = excluded."uid",
        "expires_at" = excluded."expires_at"`,
        [model, id, payload, grantId, uid, expiresAt],
      );
    },

    find(model, id) {
      return sql.get<ProviderRecordRow>(`SELECT ${COLUMNS} FROM "provider_records" WHERE "model" = ? AND "id" = ?`, [model, id]);
    },

    findByUid(model, uid) {
      return sql.get<ProviderRecordRow>(`SELECT ${COLUMNS} FROM "provider_records" WHERE "model" = ? AND "uid" = ? LIMIT 1`, [model, uid]);
    },

    async consume(model, id) {
      await sql.run(`UPDATE "provider_records" SET "consumed_at" = ? WHERE "model" = ? AND "id" = ?`, [new Date(), model, id]);
    },

    async delete(model, id) {
      await sql.run(`DELETE FROM "provider_records" WHERE "model" = ? AND "id" = ?`, [model, id]);
    },

    async deleteByGrantId(model, grantId) {
      await sql.run(`DELETE FROM "provider_records" WHERE "model" = ? AND "grant_id" = ?`, [model, grantId]);
    },

    async pruneBatch(before, batchSize) {
      const rows = await db.providerRecord.findMany({ where: { expiresAt: { lt: before } }, select: { model: true, id: true }, take: batchSize });
      if (rows.length === 0) return 0;
      const { count } = await db.providerRecord.deleteMany({ where: { OR: rows.map((r) => ({ model: r.model, id: r.id })) } });
      return count;
    },
  };
}
