import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { loadConfig } from '../src/config/index.ts';
import { requireAdmin } from '../src/http/admin/auth.ts';
import { Problem } from '../src/http/admin/problem.ts';
import { createProvider } from '../src/oidc/provider.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { testDatabase, type TestDatabase } from './helpers/server.ts';

// Admin authentication judges a bearer token as the ledger manager does: a token whose grant is gone,
// or names another client or account, opens nothing, however valid the token's own entry is.
let database: TestDatabase;
let runtime: Runtime;
let provider: Provider;
before(async () => {
  database = await testDatabase();
  runtime = await openRuntime(loadConfig({ DATABASE_URL: database.databaseUrl, LOG_LEVEL: 'silent' }), { shortLived: true });
  provider = createProvider(runtime);
  for (const id of ['console', 'other']) {
    const metadata = { grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://app.example/cb'], scope: 'openid admin' };
    await runtime.clients.create({ client_id: id, ...metadata });
  }
});
after(async () => {
  await runtime.close();
  database.cleanup();
});

type Models = {
  Grant: new (payload: object) => { save(): Promise<string>; destroy(): Promise<void> };
  AccessToken: new (payload: object) => { save(): Promise<string> };
  Client: { find(id: string): Promise<object | undefined> };
};

/** A user's access token with scope admin, issued to `console` for alice under a grant with the given client and account. */
async function adminToken(grant: { clientId: string; accountId: string }) {
  const models = provider as unknown as Models;
  const grantId = await new models.Grant(grant).save();
  const client = await models.Client.find('console');
  const value = await new models.AccessToken({ accountId: 'alice', client, grantId, scope: 'admin', gty: 'authorization_code' }).save();
  return { value, grantId };
}

/** Runs the admin authentication on a request bearing `token`; resolves to the refusal's status, or 'passed'. */
async function authenticate(token: string): Promise<number | 'passed'> {
  const req = { headers: { authorization: `Bearer ${token}` } } as unknown as Request;
  const res = { locals: {}, set: () => res } as unknown as Response;
  let passed = false;
  try {
    await requireAdmin(() => provider, undefined)(req, res, () => void (passed = true));
  } catch (error) {
    if (error instanceof Problem) return error.status;
    throw error;
  }
  return passed ? 'passed' : assert.fail('neither passed nor refused');
}

test("a token whose grant is its own client and account's → passes", async () => {
  assert.equal(await authenticate((await adminToken({ clientId: 'console', accountId: 'alice' })).value), 'passed');
});

test('a token whose grant names another account → 401', async () => {
  assert.equal(await authenticate((await adminToken({ clientId: 'console', accountId: 'mallory' })).value), 401);
});

test('a token whose grant names another client → 401', async () => {
  assert.equal(await authenticate((await adminToken({ clientId: 'other', accountId: 'alice' })).value), 401);
});

test('a token whose grant is gone → 401', async () => {
  const { value, grantId } = await adminToken({ clientId: 'console', accountId: 'alice' });
  await runtime.records.destroy('Grant', grantId);
  assert.equal(await authenticate(value), 401);
});
