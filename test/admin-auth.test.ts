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
let alice: string;
let bob: string;
before(async () => {
  database = await testDatabase();
  runtime = await openRuntime(loadConfig({ DATABASE_URL: database.databaseUrl, LOG_LEVEL: 'silent' }), { shortLived: true });
  provider = createProvider(runtime);
  alice = (await runtime.users.create({ username: 'alice', password: 'alice password', roles: ['admin'] })).id;
  bob = (await runtime.users.create({ username: 'bob', password: 'bob password' })).id;
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

/**
 * A user's access token (by default: scope admin, for the admin API), issued to `console` for
 * `accountId` (default alice) under a grant with the given client and account.
 */
async function adminToken(grant: { clientId: string; accountId: string }, token: { accountId?: string; scope?: string; aud?: string } = {}) {
  const models = provider as unknown as Models;
  const grantId = await new models.Grant(grant).save();
  const client = await models.Client.find('console');
  const { accountId = alice, scope = 'admin', aud = `${runtime.config.issuer}/admin` } = token;
  const value = await new models.AccessToken({ accountId, client, grantId, scope, aud, gty: 'authorization_code' }).save();
  return { value, grantId };
}

/** Runs the admin authentication on a request bearing `token`; resolves to the refusal's status, or 'passed'. */
async function authenticate(token: string): Promise<number | 'passed'> {
  const req = { headers: { authorization: `Bearer ${token}` }, ip: '192.0.2.1', method: 'GET', path: '/clients' } as unknown as Request;
  const res = { locals: {}, set: () => res } as unknown as Response;
  let passed = false;
  try {
    await requireAdmin(() => provider, runtime)(req, res, () => void (passed = true));
  } catch (error) {
    if (error instanceof Problem) return error.status;
    throw error;
  }
  return passed ? 'passed' : assert.fail('neither passed nor refused');
}

test("a token whose grant is its own client and account's → passes", async () => {
  assert.equal(await authenticate((await adminToken({ clientId: 'console', accountId: alice })).value), 'passed');
});

test('a token whose grant names another account → 401', async () => {
  assert.equal(await authenticate((await adminToken({ clientId: 'console', accountId: bob })).value), 401);
});

test('a token whose grant names another client → 401', async () => {
  assert.equal(await authenticate((await adminToken({ clientId: 'other', accountId: alice })).value), 401);
});

test('a token whose grant is gone → 401', async () => {
  const { value, grantId } = await adminToken({ clientId: 'console', accountId: alice });
  await runtime.records.destroy('Grant', grantId);
  assert.equal(await authenticate(value), 401);
});

// Admin rights: scope admin, the admin API's audience, and for a user's token the role admin now.
test('scope admin for another audience → 403', async () => {
  const { value } = await adminToken({ clientId: 'console', accountId: alice }, { aud: 'https://unrelated-api.example.com' });
  assert.equal(await authenticate(value), 403);
});

test('the admin audience without scope admin → 403', async () => {
  const { value } = await adminToken({ clientId: 'console', accountId: alice }, { scope: 'openid' });
  assert.equal(await authenticate(value), 403);
});

test('scope admin and the admin audience for a user without the role admin → 403; given the role → passes', async () => {
  const { value } = await adminToken({ clientId: 'console', accountId: bob }, { accountId: bob });
  assert.equal(await authenticate(value), 403);
  await runtime.users.update(bob, { roles: ['admin'] });
  assert.equal(await authenticate(value), 'passed');
  await runtime.users.update(bob, { roles: [] });
  assert.equal(await authenticate(value), 403);
});
