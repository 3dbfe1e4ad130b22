import type { Db } from './database.js';
import type { Sql } from './sql.js';

/** One revocation as the feed table holds it: its order, its JSON event, its time. */
export interface FeedRow {
  id: number;
  event: string;
  createdAt: Date;
}

/** PostgreSQL's SERIAL arrives as a number, SQLite's INTEGER too; a BIGINT would be text: read as a number either way. */
const toFeedRow = (row: FeedRow): FeedRow => ({ id: Number(row.id), event: row.event, createdAt: row.createdAt });

/** The largest id the feed can hold (PostgreSQL SERIAL); a larger Last-Event-ID names no event. */
export const MAX_FEED_ID = 2_147_483_647;

/** The ordered log of revocations behind `GET /revocations/stream`. */
export function createRevocationFeedStore(db: Db, sql: Sql) {
  return {
    async append(event: object): Promise<FeedRow> {
      const createdAt = new Date();
      const text = JSON.stringify(event);
      const row = await sql.get<{ id: number }>(`INSERT INTO "revocation_feed" ("event", "created_at") VALUES (?, ?) RETURNING "id"`, [text, createdAt]);
      return toFeedRow({ id: row!.id, event: text, createdAt });
    },
    // Polled by every replica's feed: a prepared statement.
    async listAfter(id: number, limit: number): Promise<FeedRow[]> {
      const rows = await sql.all<FeedRow>(`SELECT "id", "event", "created_at" AS "createdAt" FROM "revocation_feed" WHERE "id" > ? ORDER BY "id" LIMIT ?`, [
        id,
        limit,
      ]);
      return rows.map(toFeedRow);
    },
    async latestId(): Promise<number> {
      const row = await db.revocationFeedEvent.findFirst({ orderBy: { id: 'desc' }, select: { id: true } });
      return row?.id ?? 0;
    },
    async pruneBefore(before: Date, batchSize: number): Promise<number> {
      const rows = await db.revocationFeedEvent.findMany({ where: { createdAt: { lt: before } }, select: { id: true }, take: batchSize });
      if (rows.length === 0) return 0;
      const { count } = await db.revocationFeedEvent.deleteMany({ where: { id: { in: rows.map((r) => r.id) } } });
      return count;
    },
  };
}

export type RevocationFeedStore = ReturnType<typeof createRevocationFeedStore>;
