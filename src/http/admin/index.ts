import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { Runtime } from '../../runtime.js';
import { TallyError } from '../../lib/errors.js';
import { registerClient, updateClient, presentClient } from '../../oidc/clients.js';
import { toLedgerEntry } from '../../storage/ledger.js';
import { prune } from '../../tokens/prune.js';
import { toAuditEntry } from '../../storage/audit.js';
import { recordAdminWrites } from './audit.js';
import { requireAdmin } from './auth.js';
import { parseJsonBody } from './json-body.js';
import { pageOf, readPage } from './pagination.js';
import { renderProblems } from './problem.js';
import { openApiFor } from './openapi.js';
import { createClientBody, createUserBody, parseInput, patchClientBody, pruneBody, revocationBody, tokenQuery } from './schemas.js';

export interface AdminDependencies {
  provider: () => Provider;
  runtime: Runtime;
}

const notFound = (what: string, id: string) => new TallyError(404, 'not_found', `no ${what} with id ${id}`);

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
    res.status(201).json(await registerClient(runtime, body));
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
    const client = await updateClient(runtime, req.params.id!, patch);
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
    if (!client.secretHash) throw new TallyError(409, 'no_secret', `client ${req.params.id} authenticates without a secret (token_endpoint_auth_method ${client.metadata.token_endpoint_auth_method})`);
    res.json({ client_secret: await clients.rotateSecret(req.params.id!) });
  });

  // Users
  router.post('/users', async (req, res) => {
    const body = parseInput(createUserBody, req.body);
    res.status(201).json(await users.create(body));
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
    throw new TallyError(404, 'not_found', 'no such admin route');
  });
  router.use(renderProblems(runtime));
  return router;
}
