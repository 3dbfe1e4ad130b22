import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { Runtime } from '../../runtime.js';
import { TallyError } from '../../lib/errors.js';
import { parseClientPatch, parseNewClient } from '../../admin/client-schemas.js';
import { deleteClient, getClient, listClients, registerClient, rotateClientSecret, updateClient } from '../../admin/clients.js';
import {
  createUser,
  deleteUser,
  getUser,
  listUsers,
  parseNewUser,
  parseUserFilter,
  parseUserPatch,
  resetUserFactors,
  unlockUser,
  updateUser,
} from '../../admin/users.js';
import {
  getToken,
  listTokens,
  parsePruneRequest,
  parseRevocationPreview,
  parseRevocationRequest,
  previewRevocation,
  parseTokenFilter,
  pruneLedger,
  revokeToken,
  revokeTokens,
} from '../../admin/tokens.js';
import { listAuditEvents } from '../../admin/audit.js';
import { listKeys, parseRotationRequest, rotateKeys } from '../../admin/keys.js';
import { parseStatsQuery, tokenStats } from '../../admin/stats.js';
import type { RevocationStreams } from '../revocation-stream.js';
import { parsePage } from '../../admin/pagination.js';
import { noteCreated, recordAdminWrites } from './audit.js';
import { requireAdmin } from './auth.js';
import { parseJsonBody } from './json-body.js';
import { renderProblems } from './problem.js';
import { openApiFor } from './openapi.js';

export interface AdminDependencies {
  provider: () => Provider;
  runtime: Runtime;
  /** The revocation stream's serving, shared with `GET /revocations/stream`. */
  revocationStreams: Pick<RevocationStreams, 'serve'>;
}

/**
 * The admin API: JSON in, JSON or RFC 9457 problems out. Each route reads its input from the
 * request, hands it to an operation of the admin layer (src/admin/, shared with the CLI) and sends
 * what it returns; every error goes to renderProblems.
 */
export function createAdminRouter({ provider, runtime, revocationStreams }: AdminDependencies): Router {
  const router = express.Router();
  router.use((_req, res, next) => {
    res.set('cache-control', 'no-store');
    next();
  });
  // Before authentication: refused attempts are audited too, and the document needs no key.
  router.use(recordAdminWrites(runtime.audit, runtime.logger));
  router.get('/openapi.json', (_req, res) => void res.json(openApiFor(runtime.config.issuer)));
  router.use(requireAdmin(provider, runtime));
  router.use(parseJsonBody);
  const id = (req: Request<{ id: string }>) => req.params.id;

  // Clients
  router.post('/clients', async (req, res) => {
    const client = await registerClient(runtime, parseNewClient(req.body));
    noteCreated(res, client.client_id);
    res.status(201).json(client);
  });
  router.get('/clients', async (req, res) => void res.json(await listClients(runtime, parsePage(req.query))));
  router.get('/clients/:id', async (req, res) => void res.json(await getClient(runtime, id(req))));
  router.patch('/clients/:id', async (req, res) => void res.json(await updateClient(runtime, id(req), parseClientPatch(req.body))));
  router.delete('/clients/:id', async (req, res) => {
    await deleteClient(runtime, id(req));
    res.status(204).end();
  });
  router.post('/clients/:id/secret', async (req, res) => void res.json(await rotateClientSecret(runtime, id(req))));

  // Users
  router.post('/users', async (req, res) => {
    const user = await createUser(runtime, parseNewUser(req.body));
    noteCreated(res, user.id);
    res.status(201).json(user);
  });
  router.get('/users', async (req, res) => void res.json(await listUsers(runtime, parseUserFilter(req.query), parsePage(req.query))));
  router.get('/users/:id', async (req, res) => void res.json(await getUser(runtime, id(req))));
  router.patch('/users/:id', async (req, res) => void res.json(await updateUser(runtime, id(req), parseUserPatch(req.body))));
  router.delete('/users/:id', async (req, res) => {
    await deleteUser(runtime, id(req));
    res.status(204).end();
  });
  router.delete('/users/:id/factors', async (req, res) => {
    await resetUserFactors(runtime, id(req), 'admin_api');
    res.status(204).end();
  });
  router.post('/users/:id/unlock', async (req, res) => {
    await unlockUser(runtime, id(req));
    res.status(204).end();
  });

  // The ledger
  router.get('/tokens', async (req, res) => {
    const filter = parseTokenFilter(req.query);
    res.json(await listTokens(runtime, filter, parsePage(req.query)));
  });
  router.get('/tokens/:id', async (req, res) => void res.json(await getToken(runtime, id(req))));
  router.post('/tokens/:id/revoke', async (req, res) => void res.json(await revokeToken(runtime, id(req))));
  router.post('/revocations', async (req, res) => void res.json(await revokeTokens(runtime, parseRevocationRequest(req.body))));
  router.get('/revocations/preview', async (req, res) => void res.json(await previewRevocation(runtime, parseRevocationPreview(req.query))));
  // The feed of `GET /revocations/stream`, for a browser holding an admin token (it reads it with fetch).
  router.get('/revocations/stream', (req, res) => revocationStreams.serve(req, res));
  router.post('/prune', async (req, res) => {
    const { deleted, audit_deleted } = await pruneLedger(runtime, parsePruneRequest(req.body));
    res.json({ deleted, audit_deleted });
  });

  // Signing keys and the dashboard's numbers
  router.get('/keys', async (_req, res) => void res.json(await listKeys(runtime)));
  router.post('/keys/rotate', async (req, res) => {
    parseRotationRequest(req.body);
    const rotation = await rotateKeys(runtime);
    noteCreated(res, rotation.keys.map((k) => k.kid).join(' '));
    res.status(201).json(rotation);
  });
  router.get('/stats', async (req, res) => void res.json(await tokenStats(runtime, parseStatsQuery(req.query))));

  // The audit trail, newest first
  router.get('/audit', async (req, res) => void res.json(await listAuditEvents(runtime, parsePage(req.query))));

  router.use((_req: Request, _res: Response) => {
    throw new TallyError(404, 'not_found', 'no such admin route');
  });
  router.use(renderProblems(runtime));
  return router;
}
