import { randomBytes } from 'node:crypto';
import type { Db } from './database.js';

/** One admin API write: who, what, when and the outcome. Nothing from the body, ever. */
export interface NewAuditEvent {
  actor: { kind: string; id: string } | null;
  method: string;
  route: string | null;
  action: string | null;
  targetId: string | null;
  status: number;
  createdAt: Date;
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

export function createAuditStore(db: Db) {
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
        },
      });
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
