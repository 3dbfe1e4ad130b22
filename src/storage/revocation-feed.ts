import type { Db } from './database.js';

export interface FeedRow {
  id: number;
  event: string;
  createdAt: Date;
}

/** The ordered log of revocations behind `GET /revocations/stream`. */
export function createRevocationFeedStore(db: Db) {
  return {
    async append(event: object): Promise<FeedRow> {
      return db.revocationFeedEvent.create({ data: { event: JSON.stringify(event), createdAt: new Date() } });
    },
    listAfter(id: number, limit: number): Promise<FeedRow[]> {
      return db.revocationFeedEvent.findMany({ where: { id: { gt: id } }, orderBy: { id: 'asc' }, take: limit });
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
