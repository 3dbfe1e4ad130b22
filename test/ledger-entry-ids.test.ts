import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const millisecondsOf = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);

// Ledger entry ids are handles for the admin API, not secrets: time-ordered, rows written together
// share the last pages of the id index (bench/ANALYSIS.md).
describe('ledger entries written by a code flow and a refresh', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  });
  after(() => server.stop());

  for (const mode of ['reference', 'jwt']) {
    test(`${mode} mode: every entry's id is a UUID version 7 from the time it was written`, async () => {
      const started = Date.now();
      const client = await registerClient(server, mode);
      const user = await registerUser(server);
      const config = await discover(server, client);
      const tokens = await codeFlow(config, user);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      assert.ok(refreshed.access_token && refreshed.refresh_token);
      const list = await admin(server, 'GET', `/tokens?subject=${user.id}&limit=100`);
      assert.equal(list.status, 200);
      const ids = (list.body.items as { id: string; type: string }[]).map((item) => item.id);
      // The code, two access tokens and two refresh tokens.
      assert.equal(ids.length, 5, JSON.stringify(list.body.items.map((item: { type: string }) => item.type)));
      for (const id of ids) {
        assert.match(id, UUID_V7);
        assert.ok(millisecondsOf(id) >= started - 1 && millisecondsOf(id) <= Date.now(), id);
      }
    });
  }
});
