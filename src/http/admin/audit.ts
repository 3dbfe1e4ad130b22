import type { NextFunction, Request, Response } from 'express';
import { escapeControlCharacters } from '../../lib/text.js';
import type { Logger } from '../../config/logger.js';
import type { AuditStore } from '../../storage/audit.js';
import type { AdminActor } from './auth.js';
import { AUDITED_METHODS } from '../../admin/schemas.js';
import { documentedRoutes } from './documented-routes.js';
import { adminOpenApi } from './openapi.js';

const WRITES = new Set<string>(AUDITED_METHODS);

/**
 * The `:id` of a request as the trail keeps it: whatever the caller sent, control characters written
 * as \uXXXX escapes (PostgreSQL cannot store U+0000: the whole event was lost), at most 200 characters.
 */
export function printableId(id: string): string {
  return escapeControlCharacters(id).slice(0, 200);
}

/** Status recorded when the caller closed the connection before the answer was sent (nginx's 499). */
export const CLIENT_CLOSED = 499;

/** Tells the audit trail what a write created (the new client_id, user id or kid): set by the route. */
export function noteCreated(res: Response, id: string): void {
  res.locals.createdId = id;
}

/**
 * Records every admin write once its answer is sent: the actor that `requireAdmin` put in
 * `res.locals.actor` (none for an unauthenticated attempt), the method, the route pattern and
 * operation (from the OpenAPI document, which the tests hold equal to the router), the route's `:id`,
 * the status, the source IP (`req.ip`, trusted hops only: http/forwarded.ts) and what it created
 * (`noteCreated`). It never reads the body. Refused unauthenticated attempts (401) are counted in one
 * row per source IP and minute; every other write is a row of its own. A failure to record is logged
 * and changes nothing for the request. Mount it before authentication so that refused attempts are
 * recorded too.
 */
export function recordAdminWrites(audit: AuditStore, logger: Logger) {
  const routes = documentedRoutes(adminOpenApi);
  return (req: Request, res: Response, next: NextFunction) => {
    if (!WRITES.has(req.method)) return next();
    // Matched now: req.path is relative to the router only while the request is inside it.
    const method = req.method;
    const path = req.path;
    let matched: { route: string; action: string; targetId: string | null } | undefined;
    for (const candidate of routes) {
      const params = candidate.method === method ? candidate.match(path) : undefined;
      if (params) {
        matched = { route: candidate.route, action: candidate.operationId, targetId: params.id === undefined ? null : printableId(params.id) };
        break;
      }
    }
    let recorded = false;
    const record = (status: number) => {
      if (recorded) return;
      recorded = true;
      const actor = res.locals.actor as AdminActor | undefined;
      const createdId = res.locals.createdId as string | undefined;
      const event = {
        actor: actor ? { kind: actor.kind, id: actor.id } : null,
        method,
        route: matched?.route ?? null,
        action: matched?.action ?? null,
        targetId: matched?.targetId ?? null,
        status,
        createdAt: new Date(),
        sourceIp: req.ip ?? null,
        createdId: createdId ?? null,
      };
      const fail = (error: unknown) => logger.error({ err: error, method, route: event.route, status }, 'audit event not recorded');
      try {
        (status === 401 && !actor ? audit.recordRefusal(event) : audit.record(event)).catch(fail);
      } catch (error) {
        fail(error);
      }
    };
    res.once('finish', () => record(res.statusCode));
    res.once('close', () => record(res.writableFinished ? res.statusCode : CLIENT_CLOSED));
    next();
  };
}
