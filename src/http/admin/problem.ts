import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Runtime } from '../../runtime.js';
import { exposedError, TallyError } from '../../lib/errors.js';
import { DATABASE_UNAVAILABLE, isDatabaseUnavailable, RETRY_AFTER_SECONDS, type UnavailableNotice } from '../../storage/unavailable.js';

// The admin API's transport: every error as an RFC 9457 problem (application/problem+json) with a
// stable `code`, written here and nowhere else.

/** Every code a problem may carry, with its RFC 9457 title (one title per problem type). */
export const PROBLEM_TITLES = {
  invalid_request: 'Invalid request',
  unknown_field: 'Invalid request',
  invalid_json: 'Invalid JSON',
  duplicate_key: 'Duplicate key',
  invalid_client_metadata: 'Invalid client metadata',
  unauthenticated: 'Unauthenticated',
  invalid_token: 'Unauthenticated',
  insufficient_scope: 'Forbidden',
  not_found: 'Not found',
  duplicate_client_id: 'Client id taken',
  no_secret: 'Client has no secret',
  duplicate_username: 'Username taken',
  body_too_large: 'Body too large',
  unsupported_media_type: 'Unsupported media type',
  internal_error: 'Internal error',
  database_unavailable: 'Database unavailable',
} as const satisfies Record<string, string>;

type ProblemCode = keyof typeof PROBLEM_TITLES;

/**
 * @deprecated Throw TallyError: the title follows from the code (PROBLEM_TITLES). Kept, with its
 * signature, for src/http/admin/auth.ts, which is being reworked elsewhere.
 */
export class Problem extends TallyError {
  constructor(status: number, code: ProblemCode, _title: string, detail: string, field?: string) {
    super(status, code, detail, { field });
  }
}

/**
 * The RFC 9457 document of an error that may be shown. A code missing from PROBLEM_TITLES is not
 * hidden: the OpenAPI document lists the codes, and its test fails on any other.
 */
export function problemBody(error: TallyError): Record<string, unknown> {
  return {
    type: `urn:tally:problem:${error.code}`,
    title: (PROBLEM_TITLES as Record<string, string>)[error.code] ?? 'Error',
    status: error.status,
    detail: error.message,
    code: error.code,
    ...(error.field ? { field: error.field } : {}),
  };
}

/** The media type of every problem (RFC 9457 §8.1). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function sendProblem(res: Response, error: TallyError) {
  res
    .status(error.status)
    .type(PROBLEM_CONTENT_TYPE)
    .set('cache-control', 'no-store')
    .send(JSON.stringify(problemBody(error)));
}

/** Writes a problem on a response no router has touched (see server.ts's refusals). */
export function writeProblem(res: ServerResponse, error: TallyError, headers: Record<string, string> = {}) {
  res.writeHead(error.status, { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(problemBody(error)));
}

const UNAVAILABLE = new TallyError(503, 'database_unavailable', 'the database does not answer; try again in a few seconds', { expose: true });
const INTERNAL = new TallyError(500, 'internal_error', 'the server could not complete the request; nothing was changed that it did not finish', {
  expose: true,
});

/** The admin router's error handler: the one place its errors become answers. */
export function renderProblems({ events, logger }: Pick<Runtime, 'events' | 'logger'>) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof TallyError && error.expose) return sendProblem(res, error);
    const path = req.originalUrl.split('?')[0]!;
    // Before the check below: a database connection that was reset says ECONNRESET too.
    if (isDatabaseUnavailable(error) && res.socket && !res.socket.destroyed) {
      events.emit(DATABASE_UNAVAILABLE, { path, error } satisfies UnavailableNotice);
      res.set('retry-after', String(RETRY_AFTER_SECONDS));
      return sendProblem(res, UNAVAILABLE);
    }
    // The client went away mid-body: nobody to answer, nothing wrong here.
    if ((error as { code?: string }).code === 'ECONNRESET' || !res.socket || res.socket.destroyed) {
      logger.debug({ method: req.method, path }, 'admin request aborted by the client');
      return;
    }
    // Express's own 4xx (a path parameter that does not percent-decode, say) is the caller's error.
    const shown = exposedError(error);
    if (shown) return sendProblem(res, new TallyError(shown.status, 'invalid_request', shown.message));
    logger.error({ err: error, method: req.method, path }, 'admin request failed');
    sendProblem(res, INTERNAL);
  };
}
