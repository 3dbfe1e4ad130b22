import express, { type Router } from 'express';
import { pingDatabase, type Db } from '../storage/database.js';
import { RETRY_AFTER_SECONDS } from '../storage/unavailable.js';

export function createHealthRouter(db: Db): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ready = await pingDatabase(db, 5000);
    if (!ready) res.set('retry-after', String(RETRY_AFTER_SECONDS));
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'database unavailable' });
  });
  return router;
}
