import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Runtime } from '../runtime.js';
import { exposedError, TallyError } from '../lib/errors.js';
import { OVERLOADED_RETRY_AFTER_SECONDS, overloadedOf } from '../lib/limiter.js';
import { reportOverloaded } from '../oidc/client-secrets.js';
import { UNAVAILABLE_BODY, UNAVAILABLE_PAGE } from '../oidc/unavailable.js';
import { DATABASE_UNAVAILABLE, isDatabaseUnavailable, RETRY_AFTER_SECONDS, type UnavailableNotice } from '../storage/unavailable.js';
import { renderPage } from './views.js';

// The OAuth transport of Tally's own routes (interaction pages, the revocation feed, health, metrics,
// and refusals made before any router): RFC 6749's JSON error, or an error page for people. The
// admin API has its own (admin/problem.ts); oidc-provider renders its own errors (oidc/provider.ts).

/** RFC 6749 §5.2's body: the code and the message of an error that may be shown. */
export function oauthErrorBody(error: TallyError): { error: string; error_description: string } {
  return { error: error.code, error_description: error.message };
}

/** The media type of RFC 6749's JSON error as Tally writes it. */
export const OAUTH_ERROR_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Writes an OAuth error on a response no router has touched (see server.ts's refusals). */
export function writeOAuthError(res: ServerResponse, error: TallyError, headers: Record<string, string> = {}) {
  res.writeHead(error.status, { 'content-type': OAUTH_ERROR_CONTENT_TYPE, 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(oauthErrorBody(error)));
}

/** The page of a person's request refused at a bound of expensive work (a sign-in during a flood). */
const OVERLOADED_PAGE = {
  title: 'Too busy right now',
  error: 'temporarily_unavailable',
  description: 'This service is handling too many requests at the moment. Wait a few seconds, then try again.',
};

/** What a 500 says: nothing about why (that is logged). */
const SERVER_ERROR = new TallyError(500, 'server_error', 'The server could not complete the request.', { expose: true });

/** The Express error handler of the app: the one place its errors become answers. */
export function renderAppErrors({ events, logger, security }: Pick<Runtime, 'events' | 'logger' | 'security'>) {
  return async (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    // Only the interaction pages are for people; the feed, health and metrics paths answer in the OAuth shape.
    const forPeople = req.path.startsWith('/interaction/') && req.accepts(['html', 'json']) === 'html';
    // Expensive work refused at its bound (a flood of sign-ins or client authentications): answered at once.
    const overloaded = overloadedOf(error);
    if (overloaded) {
      reportOverloaded(security, overloaded, { path: req.path, ip: req.ip });
      if (res.headersSent) return void res.end();
      res.status(503).set({ 'cache-control': 'no-store', 'retry-after': String(OVERLOADED_RETRY_AFTER_SECONDS) });
      if (forPeople) res.send(await renderPage('error', OVERLOADED_PAGE));
      else res.json(oauthErrorBody(overloaded));
      return;
    }
    const unavailable = isDatabaseUnavailable(error);
    const shown = unavailable ? undefined : exposedError(error);
    if (unavailable) events.emit(DATABASE_UNAVAILABLE, { path: req.path, error } satisfies UnavailableNotice);
    else if (!shown) logger.error({ err: error, path: req.path }, 'request failed');
    // A stream already under way cannot take an error document: end it, so the client does not wait on.
    if (res.headersSent) return void res.end();
    if (unavailable) {
      res.status(503).set({ 'cache-control': 'no-store', 'retry-after': String(RETRY_AFTER_SECONDS) });
      if (forPeople) res.send(await renderPage('error', UNAVAILABLE_PAGE));
      else res.json(UNAVAILABLE_BODY);
      return;
    }
    const answer = shown ?? SERVER_ERROR;
    res.status(answer.status).set('cache-control', 'no-store');
    if (forPeople) res.send(await renderPage('error', { title: 'Something went wrong', error: answer.code, description: answer.message }));
    else res.json(oauthErrorBody(answer));
  };
}
