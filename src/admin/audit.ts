import type { Runtime } from '../runtime.js';
import { toAuditEntry, type AuditEntry } from '../storage/audit.js';
import { pageOf, type Page, type PageOf } from './pagination.js';

/** The audit trail of admin writes and refused attempts, newest first. */
export async function listAuditEvents(runtime: Runtime, page: Page): Promise<PageOf<AuditEntry>> {
  const rows = await runtime.audit.list(page.limit + 1, page.after);
  return pageOf(rows, page.limit, (r) => r, toAuditEntry);
}
