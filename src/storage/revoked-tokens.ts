import { isDuplicateKey, type Sql } from './sql.js';
import type { Db } from './database.js';

/** A stateless token that was revoked or (a refresh token) used, kept until the token expires. */
export interface RevokedTokenRow {
  lookupHash: string;
  type: string;
  reason: RevokedReason;
  revokedAt: Date;
  expiresAt: Date;
}

export type RevokedReason = 'revoked' | 'consumed';

/** A read a cache in front of the store may answer (revocation-cache.ts); the store itself always reads. */
export interface CacheableRead {
  cacheable?: boolean;
}

/** The revoked-token list: stateless tokens have no ledger entry, so their state is kept here. */
export interface RevokedTokenStore {
  /** Lists a token; false when it is already listed (a lost race). A revocation overrides a use. */
  add(lookupHash: string, type: string, reason: RevokedReason, expiresAt: Date): Promise<boolean>;
  /** `cacheable`: a stateless access token's listing, which only a published revocation changes (revocation-cache.ts may answer it from memory). */
  find(lookupHash: string, options?: CacheableRead): Promise<RevokedTokenRow | undefined>;
  /** Deletes up to `batchSize` rows of tokens that expired before `before`; returns how many. */
  pruneBatch(before: Date, batchSize: number): Promise<number>;
}

/** Read and written on every stateless token request: prepared statements; pruning uses Prisma. */
export function createRevokedTokenStore(db: Db, sql: Sql): RevokedTokenStore {
  return {
    async add(lookupHash, type, reason, expiresAt) {
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
        if (!isDuplicateKey(error)) throw error;
        if (reason === 'revoked') await sql.run(`UPDATE "revoked_tokens" SET "reason" = 'revoked' WHERE "lookup_hash" = ?`, [lookupHash]);
        return false;
      }
    },

    find(lookupHash) {
      return sql.get<RevokedTokenRow>(
        `SELECT "lookup_hash" AS "lookupHash", "type", "reason", "revoked_at" AS "revokedAt", "expires_at" AS "expiresAt" FROM "revoked_tokens" WHERE "lookup_hash" = ?`,
        [lookupHash],
      );
    },

    async pruneBatch(before, batchSize) {
      const rows = await db.revokedToken.findMany({ where: { expiresAt: { lt: before } }, select: { lookupHash: true }, take: batchSize });
      if (rows.length === 0) return 0;
      const { count } = await db.revokedToken.deleteMany({ where: { lookupHash: { in: rows.map((r) => r.lookupHash) } } });
      return count;
    },
  };
}
