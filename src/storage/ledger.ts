import type { Db } from './database.js';

export type EntryType = 'access_token' | 'refresh_token' | 'authorization_code' | 'device_code';
export type EntryFormat = 'reference' | 'jwt';
export type EntryStatus = 'valid' | 'redeemed' | 'revoked' | 'inactive';

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
}

type Row = Awaited<ReturnType<Db['tokenEntry']['findUniqueOrThrow']>>;

export function toLedgerEntry(row: Row): LedgerEntry {
  return {
    id: row.id,
    type: row.type as EntryType,
    format: row.format as EntryFormat,
    status: row.status as EntryStatus,
    subject: row.subject,
    client_id: row.clientId,
    grant_id: row.grantId,
    scope: row.scope,
    audience: row.audience,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt.toISOString(),
    redeemed_at: row.redeemedAt?.toISOString() ?? null,
  };
}

/** Statuses in which a token still counts; redeemed entries stay findable for reuse detection. */
export const LIVE_STATUSES: EntryStatus[] = ['valid', 'redeemed'];
