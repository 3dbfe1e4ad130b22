import type { z } from 'zod';
import type { Runtime } from '../runtime.js';
import { toLedgerEntry } from '../storage/ledger.js';
import { prune, type PruneOptions, type PruneResult } from '../tokens/prune.js';
import { notFound, parseInput } from './input.js';
import { pageOf, type Page, type PageOf } from './pagination.js';
import { pruneBody, revocationBody, revocationPreviewQuery, tokenQuery, type ledgerEntryView } from './schemas.js';

// The operations on the token ledger, for the admin API and the CLI. Never a token value or payload.

export type LedgerEntryView = z.output<typeof ledgerEntryView>;
export type TokenFilter = z.output<typeof tokenQuery>;
export type RevocationRequest = z.output<typeof revocationBody>;

export const parseTokenFilter = (query: unknown): TokenFilter => parseInput(tokenQuery, query, 'query');
export const parseRevocationRequest = (body: unknown): RevocationRequest => parseInput(revocationBody, body);
/** No body means the defaults; a body must be an object (`null` is not one). */
export const parsePruneRequest = (body: unknown): PruneOptions => ({
  olderThanSeconds: parseInput(pruneBody, body === undefined ? {} : body).older_than_seconds,
});

/** Newest first. */
export async function listTokens(runtime: Runtime, filter: TokenFilter, page: Page): Promise<PageOf<LedgerEntryView>> {
  const rows = await runtime.ledger.list(
    { subject: filter.subject, clientId: filter.client_id, grantId: filter.grant_id, status: filter.status, type: filter.type },
    page.limit + 1,
    page.after,
  );
  return pageOf(rows, page.limit, (r) => r, toLedgerEntry);
}

export async function getToken(runtime: Runtime, id: string): Promise<LedgerEntryView> {
  const row = await runtime.ledger.findById(id);
  if (!row) throw notFound('token', id);
  return toLedgerEntry(row);
}

export async function revokeToken(runtime: Runtime, id: string): Promise<LedgerEntryView> {
  const entry = await runtime.revocation.revokeEntry(id);
  if (!entry) throw notFound('token', id);
  return entry;
}

/** Every matching token of every mode issued at or before now becomes inactive; the count of ledger entries revoked. */
export async function revokeTokens(runtime: Runtime, request: RevocationRequest): Promise<{ revoked: number }> {
  return { revoked: await runtime.revocation.revokeScope({ subject: request.subject, clientId: request.client_id, grantId: request.grant_id }) };
}

/** Deletes what can never be active again, in batches (tokens/prune.ts); never an unexpired token's entry. */
export function pruneLedger(runtime: Runtime, options: PruneOptions): Promise<PruneResult> {
  return prune(runtime, options);
}

export type RevocationPreviewRequest = z.output<typeof revocationPreviewQuery>;
export const parseRevocationPreview = (query: unknown): RevocationPreviewRequest => parseInput(revocationPreviewQuery, query, 'query');

/** How many ledger entries `revokeTokens` with the same fields would revoke now; stateless tokens cannot be counted. */
export async function previewRevocation(runtime: Runtime, request: RevocationPreviewRequest): Promise<{ matching: number; stateless_not_counted: true }> {
  const scope = { subject: request.subject, clientId: request.client_id, grantId: request.grant_id };
  return { matching: await runtime.stores.entries.countDeactivatable(scope, new Date()), stateless_not_counted: true };
}
