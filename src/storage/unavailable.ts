/**
 * Whether an error means "the database is unavailable": the request was fine, the dependency is not,
 * and the same request should succeed once it is back (every surface answers 503 with Retry-After).
 * The one place that knows the drivers' shapes, as observed by provoking them (a refused, reset and
 * silent connection, a terminated backend, a locked SQLite file):
 *
 * - pg: socket errors (`ECONNREFUSED`, …, naming the `syscall` that failed: an HTTP client hanging up
 *   mid-request is an `ECONNRESET` too, without one), plain errors without a code ("Connection
 *   terminated unexpectedly", "Connection terminated due to connection timeout", the pool's "timeout
 *   exceeded when trying to connect"), and server errors with a SQLSTATE (`57P01`: backend terminated).
 * - Prisma with adapter-pg or adapter-better-sqlite3: `P1001` (not reachable), `P1008` (timed out, SQLite's
 *   SQLITE_BUSY too), `P1017` (connection closed), or any code with the driver's error in
 *   `meta.driverAdapterError.cause` (`kind`, `originalCode`); errors the adapter does not map (the pg
 *   messages above) pass through unchanged.
 * - better-sqlite3: `SQLITE_BUSY`, `SQLITE_IOERR_WRITE`, … (extended codes start with the primary one).
 *
 * Wrapping errors are looked through (`cause`, an AggregateError's `errors`), except one that already
 * answers 4xx: a client's own jwks_uri refusing a connection is that client's problem, not ours.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  return inspect(error, 0);
}

/**
 * Another shared store Tally cannot answer without (Redis holding the throttle's counts) did not
 * answer: judged and answered as the database being unavailable (503 with Retry-After everywhere).
 */
export class SharedStoreUnavailable extends Error {
  constructor(store: string, cause: unknown) {
    super(`${store} did not answer`, { cause });
    this.name = 'SharedStoreUnavailable';
  }
}

/** Seconds a client is told to wait (Retry-After) before trying again. */
export const RETRY_AFTER_SECONDS = 5;

/**
 * The `Runtime.events` notification of a request refused because the database was unavailable, with
 * `{ path, error }` (see UnavailableNotice): one per request, whatever the surface.
 */
export const DATABASE_UNAVAILABLE = 'database-unavailable';
export interface UnavailableNotice {
  path: string;
  error: unknown;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// P1001 not reachable, P1002 timed out reaching it, P1008 operation timed out, P1017 connection closed,
// P2024 timed out waiting for a pooled connection.
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'SocketTimeout', 'ConnectionClosed']);
// 08xxx connection exceptions; 57P01-03 shutting down or starting up; 53300 too many connections.
const POSTGRES_STATES = /^(08...|57P0[123]|53300)$/;
const SQLITE_CODES = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|PROTOCOL)(_|$)/;
// pg and pg-pool throw these as plain errors, without a code.
const PG_MESSAGES =
  /^(Connection terminated\b|timeout exceeded when trying to connect$|Query read timeout$|Client has encountered a connection error and is not queryable$)/;

function codeMeans(code: unknown): boolean {
  if (typeof code !== 'string') return false;
  return PRISMA_CODES.has(code) || POSTGRES_STATES.test(code) || SQLITE_CODES.test(code);
}

function inspect(error: unknown, depth: number): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if (error instanceof SharedStoreUnavailable) return true;
  const e = error as {
    code?: unknown;
    syscall?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
    statusCode?: unknown;
    meta?: { driverAdapterError?: { cause?: { kind?: unknown; code?: unknown; originalCode?: unknown } } };
  };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return false;
  if (codeMeans(e.code) || (NETWORK_CODES.has(e.code as string) && typeof e.syscall === 'string')) return true;
  if (typeof e.message === 'string' && PG_MESSAGES.test(e.message)) return true;
  const driver = e.meta?.driverAdapterError?.cause;
  if (driver && (ADAPTER_KINDS.has(driver.kind as string) || codeMeans(driver.originalCode) || codeMeans(driver.code))) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => inspect(inner, depth + 1))) return true;
  return inspect(e.cause, depth + 1);
}
