import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { Runtime } from '../../runtime.js';
import { registerClient, updateClient, ClientValidationError, DuplicateClientError, presentClient } from '../../oidc/clients.js';
import { toLedgerEntry } from '../../storage/ledger.js';
import { DuplicateUsernameError } from '../../storage/users.js';
import { prune } from '../../tokens/prune.js';
import { toAuditEntry } from '../../storage/audit.js';
import { exposedStatus } from '../errors.js';
import { DATABASE_UNAVAILABLE, isDatabaseUnavailable, RETRY_AFTER_SECONDS, type UnavailableNotice } from '../../storage/unavailable.js';
import { recordAdminWrites } from './audit.js';
import { requireAdmin } from './auth.js';
import { parseJsonBody } from './json-body.js';
import { pageOf, readPage } from './pagination.js';
import { notFound, Problem, sendProblem } from './problem.js';
import { openApiFor } from './openapi.js';
import { createClientBody, createUserBody, parseInput, patchClientBody, pruneBody, revocationBody, tokenQuery } from './schemas.js';

export interface AdminDependencies {
  provider: () => Provider;
  runtime: Runtime;
}

function clientProblem(error: unknown): never {
  if (error instanceof DuplicateClientError) throw new Problem(409, 'duplicate_client_id', 'Client id taken', error.message, 'client_id');
  if (error instanceof ClientValidationError) {
    throw new Problem(400, 'invalid_client_metadata', 'Invalid client metadata', error.field ? `${error.field}: ${error.message}` : error.message, error.field);
  }
  throw error;
}

/** The admin API: JSON in, JSON or RFC 9457 problems out. */
export function createAdminRouter({ provider, runtime }: AdminDependencies): Router {
  const { clients, users, ledger, revocation } = runtime;
  const router = express.Router();
  router.use((_req, res, next) => {
    res.set('cache-control', 'no-store');
    next();
  });
  // Before authentication: refused attempts are audited too, and the document needs no key.
  router.use(recordAdminWrites(runtime.audit, runtime.logger));
  router.get('/openapi.json', (_req, res) => void res.json(openApiFor(runtime.config.issuer)));
  router.use(requireAdmin(provider, runtime.config.adminApiKey));
  router.use(parseJsonBody);

  // Clients
  router.post('/clients', async (req, res) => {
    const body = parseInput(createClientBody, req.body);
    res.status(201).json(await registerClient(runtime, body).catch(clientProblem));
  });
  router.get('/clients', async (req, res) => {
    const page = readPage(req.query);
    const rows = await clients.list(page.limit + 1, page.after);
    res.json(pageOf(rows, page.limit, (c) => ({ createdAt: c.createdAt, id: String(c.metadata.client_id) }), (c) => presentClient(c)));
  });
  router.get('/clients/:id', async (req, res) => {
    const client = await clients.find(req.params.id!);
    if (!client) throw notFound('client', req.params.id!);
    res.json(presentClient(client));
  });
  router.patch('/clients/:id', async (req, res) => {
    const patch = parseInput(patchClientBody, req.body);
    const client = await updateClient(runtime, req.params.id!, patch).catch(clientProblem);
    if (!client) throw notFound('client', req.params.id!);
    res.json(client);
  });
  router.delete('/clients/:id', async (req, res) => {
    if (!(await clients.find(req.params.id!))) throw notFound('client', req.params.id!);
    await revocation.revokeScope({ clientId: req.params.id! });
    await clients.delete(req.params.id!);
    res.status(204).end();
  });
  router.post('/clients/:id/secret', async (req, res) => {
    const client = await clients.find(req.params.id!);
    if (!client) throw notFound('client', req.params.id!);
    if (!client.secretHash) throw new Problem(409, 'no_secret', 'Client has no secret', `client ${req.params.id} authenticates without a secret (token_endpoint_auth_method ${client.metadata.token_endpoint_auth_method})`);
    res.json({ client_secret: await clients.rotateSecret(req.params.id!) });
  });

  // Users
  router.post('/users', async (req, res) => {
    const body = parseInput(createUserBody, req.body);
    try {
      res.status(201).json(await users.create(body));
    } catch (error) {
      if (error instanceof DuplicateUsernameError) throw new Problem(409, 'duplicate_username', 'Username taken', error.message, 'username');
      throw error;
    }
  });
  router.get('/users/:id', async (req, res) => {
    const user = await users.find(req.params.id!);
    if (!user) throw notFound('user', req.params.id!);
    res.json(user);
  });
  router.delete('/users/:id', async (req, res) => {
    if (!(await users.find(req.params.id!))) throw notFound('user', req.params.id!);
    await revocation.revokeScope({ subject: req.params.id! });
    await users.delete(req.params.id!);
    res.status(204).end();
  });

  // The ledger
  router.get('/tokens', async (req, res) => {
    const query = parseInput(tokenQuery, req.query, 'query');
    const page = readPage(req.query);
    const rows = await ledger.list({ subject: query.subject, clientId: query.client_id, status: query.status, type: query.type }, page.limit + 1, page.after);
    res.json(pageOf(rows, page.limit, (r) => r, toLedgerEntry));
  });
  router.get('/tokens/:id', async (req, res) => {
    const row = await ledger.findById(req.params.id!);
    if (!row) throw notFound('token', req.params.id!);
    res.json(toLedgerEntry(row));
  });
  router.post('/tokens/:id/revoke', async (req, res) => {
    const entry = await revocation.revokeEntry(req.params.id!);
    if (!entry) throw notFound('token', req.params.id!);
    res.json(entry);
  });
  router.post('/revocations', async (req, res) => {
    const body = parseInput(revocationBody, req.body);
    res.json({ revoked: await revocation.revokeScope({ subject: body.subject, clientId: body.client_id, grantId: body.grant_id }) });
  });
  router.post('/prune', async (req, res) => {
    // No body means the defaults; a body must be an object (`null` is not one).
    const body = parseInput(pruneBody, req.body === undefined ? {} : req.body);
    const result = await prune(runtime, { olderThanSeconds: body.older_than_seconds });
    res.json({ deleted: result.deleted });
  });

  // The audit trail, newest first
  router.get('/audit', async (req, res) => {
    const page = readPage(req.query);
    const rows = await runtime.audit.list(page.limit + 1, page.after);
    res.json(pageOf(rows, page.limit, (r) => r, toAuditEntry));
  });

  router.use((_req: Request, _res: Response) => {
    throw new Problem(404, 'not_found', 'Not found', 'no such admin route');
  });
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof Problem) return sendProblem(res, error);
    // Before the check below: a database connection that was reset says ECONNRESET too.
    if (isDatabaseUnavailable(error) && res.socket && !res.socket.destroyed) {
      runtime.events.emit(DATABASE_UNAVAILABLE, { path: req.originalUrl.split('?')[0]!, error } satisfies UnavailableNotice);
      res.set('retry-after', String(RETRY_AFTER_SECONDS));
      return sendProblem(res, new Problem(503, 'database_unavailable', 'Database unavailable', 'the database does not answer; try again in a few seconds'));
    }
    // The client went away mid-body: nobody to answer, nothing wrong here.
    if ((error as { code?: string }).code === 'ECONNRESET' || !res.socket || res.socket.destroyed) {
      runtime.logger.debug({ method: req.method, path: req.originalUrl.split('?')[0] }, 'admin request aborted by the client');
      return;
    }
    // Express's own 4xx (a path parameter that does not percent-decode, say) is the caller's error.
    const status = exposedStatus(error);
    if (status) return sendProblem(res, new Problem(status, 'invalid_request', 'Invalid request', (error as Error).message));
    runtime.logger.error({ err: error, method: req.method, path: req.originalUrl.split('?')[0] }, 'admin request failed');
    sendProblem(res, new Problem(500, 'internal_error', 'Internal error', 'the server could not complete the request; nothing was changed that it did not finish'));
  });
  return router;
}
