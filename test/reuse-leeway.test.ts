import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { REDIRECT_URI } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { withinReuseLeeway } from '../src/tokens/ledger-manager.ts';

let server: TestServer;
before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, REFRESH_TOKEN_REUSE_LEEWAY: '30' } });
});
after(() => server.stop());

for (const mode of ['reference', 'jwt', 'stateless']) {
  test(`${mode}: within REFRESH_TOKEN_REUSE_LEEWAY a just-rotated refresh token may be presented again without revoking the grant`, async () => {
    const client = (
      await admin(server, 'POST', '/clients', {
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        scope: 'openid offline_access',
        token_mode: mode,
      })
    ).body;
    const username = `leeway-${mode}-${process.pid}`;
    await admin(server, 'POST', '/users', { username, password: 'a long password' });
    const config = await discover(server, client);
    const first = await codeFlow(config, { username, password: 'a long password' }, 'openid offline_access');
    const second = await oidc.refreshTokenGrant(config, first.refresh_token!);
    const again = await oidc.refreshTokenGrant(config, first.refresh_token!); // a retry, e.g. after a lost response
    assert.ok(again.access_token);
    for (const token of [second.access_token, second.refresh_token!, again.access_token, again.refresh_token!]) {
      assert.equal((await oidc.tokenIntrospection(config, token)).active, true, 'nothing of the grant was revoked');
    }
  });
}

test('the leeway rule: 0 means never, even within the same millisecond; otherwise up to the leeway, inclusive', () => {
  const used = new Date('2026-05-01T12:00:00.000Z');
  const at = (ms: number) => used.getTime() + ms;
  assert.equal(withinReuseLeeway(used, 0, at(0)), false, 'a second use in the very millisecond of the first is a reuse');
  assert.equal(withinReuseLeeway(used, 30, at(0)), true);
  assert.equal(withinReuseLeeway(used, 30, at(30_000)), true);
  assert.equal(withinReuseLeeway(used, 30, at(30_001)), false);
});
