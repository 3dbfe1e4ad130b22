import { randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import type { Sql } from './sql.js';

/** One admin API write: who, what, when, from where and the outcome. Nothing from the body, ever. */
export interface NewAuditEvent {
  actor: { kind: string; id: string } | null;
  method: string;
  route: string | null;
  action: string | null;
  targetId: string | null;
  status: number;
  createdAt: Date;
  /** The client IP (req.ip: the socket's peer or what trusted proxies say). */
  sourceIp: string | null;
  /** What the write created (a client_id, a user id, a kid), when it created something. */
  createdId: string | null;
}

/** An audit event as the admin API shows it. */
export interface AuditEntry {
  id: string;
  created_at: string;
  actor: { kind: string; id: string } | null;
  method: string;
  route: string | null;
  action: string | null;
  target_id: string | null;
  status: number;
  source_ip: string | null;
  count: number;
  created_id: string | null;
}

type Row = Awaited<ReturnType<Db['auditEvent']['findUniqueOrThrow']>>;
export type AuditRow = Row;

export function toAuditEntry(row: Row): AuditEntry {
  return {
    id: row.id,
    created_at: row.createdAt.toISOString(),
    actor: row.actorKind && row.actorId ? { kind: row.actorKind, id: row.actorId } : null,
    method: row.method,
    route: row.route,
    action: row.action,
    target_id: row.targetId,
    status: row.status,
    source_ip: row.sourceIp,
    count: row.count,
    created_id: row.createdId,
  };
}

let lastMs = 0;
let sequence = 0;

/**
 * A UUIDv7 (RFC 9562) for `at`, with a 12-bit counter in place of rand_a (its "method 1") so that
 * events recorded by this process in one millisecond sort in the order they were recorded.
 */
export function uuidV7(at: Date): string {
  const ms = Math.max(at.getTime(), lastMs);
  sequence = ms === lastMs ? sequence + 1 : 0;
  lastMs = ms;
  if (sequence > 0xfff) {
    // 4096 events in one millisecond: borrow the next one (ids stay unique and ordered).
    lastMs = ms + 1;
    sequence = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const MINUTE_MS = 60_000;

// One row per source IP and minute: the first refusal inserts it, later ones add to its count. One
// statement, so concurrent refusals (other requests, other replicas) never make a second row.
const AGGREGATE = `INSERT INTO "audit_events" ("id", "actor_kind", "actor_id", "method", "route", "action", "target_id", "status", "created_at",
  "source_ip", "count", "created_id", "refused_minute") VALUES (?, NULL, NULL, ?, ?, ?, ?, ?, ?, ?, 1, NULL, ?)
  ON CONFLICT ("source_ip", "refused_minute") DO UPDATE SET "count" = "audit_events"."count" + 1`;

export function createAuditStore(db: Db, sql: Sql) {
  return {
    async record(event: NewAuditEvent): Promise<void> {
      await db.auditEvent.create({
        data: {
          id: uuidV7(event.createdAt),
          actorKind: event.actor?.kind ?? null,
          actorId: event.actor?.id ?? null,
          method: event.method,
          route: event.route,
          action: event.action,
          targetId: event.targetId,
          status: event.status,
          createdAt: event.createdAt,
          sourceIp: event.sourceIp,
          createdId: event.createdId,
        },
      });
    },

    /**
     * A refused unauthenticated attempt, counted in its source IP's row for the minute (created with
     * the first attempt's method, route and time). A flood costs one row a minute, not one a request.
     */
    async recordRefusal(event: Omit<NewAuditEvent, 'actor' | 'createdId'>): Promise<void> {
      const minute = new Date(Math.floor(event.createdAt.getTime() / MINUTE_MS) * MINUTE_MS);
      await sql.run(AGGREGATE, [
        uuidV7(event.createdAt),
        event.method,
        event.route,
        event.action,
        event.targetId,
        event.status,
        event.createdAt,
        event.sourceIp ?? 'unknown',
        minute,
      ]);
    },

    /** Deletes up to `batchSize` rows recorded before `before`; answers how many. */
    async pruneBatch(before: Date, batchSize: number): Promise<number> {
      const rows = await db.auditEvent.findMany({ where: { createdAt: { lt: before } }, select: { id: true }, take: batchSize });
      if (rows.length === 0) return 0;
      const { count } = await db.auditEvent.deleteMany({ where: { id: { in: rows.map((r) => r.id) } } });
      return count;
    },

    /** Newest first; the cursor is the last event's (created_at, id). */
    list(limit: number, before?: { createdAt: Date; id: string }): Promise<Row[]> {
      return db.auditEvent.findMany({
        where: before ? { OR: [{ createdAt: { lt: before.createdAt } }, { createdAt: before.createdAt, id: { lt: before.id } }] } : {},
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: limit,
      });
    },
  };
}

export type AuditStore = ReturnType<typeof createAuditStore>;
