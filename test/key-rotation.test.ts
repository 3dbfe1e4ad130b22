import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { execute, query } from './helpers/db.ts';
import { discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let config: oidc.Configuration;
before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, KEY_ACTIVATION_DELAY: '5', KEY_RELOAD_INTERVAL: '1' } });
  const client = (await admin(server, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read', token_mode: 'jwt' }))
    .body;
  config = await discover(server, client);
});
after(() => server.stop());

const kids = async () => ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string; alg: string }[] }).keys;
const issueKid = async () => decodeProtectedHeader((await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token).kid;

test('keys rotate on a running server: published at once, used after the activation delay, old tokens still good', async () => {
  const before = await kids();
  const oldToken = (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
  const oldKid = decodeProtectedHeader(oldToken).kid;
  assert.ok(before.some((k) => k.kid === oldKid));

  const rotated = JSON.parse(server.cli(['keys', 'rotate'])) as { added: { kid: string; alg: string }[] };
  const newKid = rotated.added.find((k) => k.alg === 'ES256')!.kid;

  await sleep(1300); // one reload interval: published, not yet signing
  const published = await kids();
  assert.ok(
    published.some((k) => k.kid === newKid),
    'the new key is in the JWKS',
  );
  assert.ok(
    published.some((k) => k.kid === oldKid),
    'the old key is still in the JWKS',
  );
  assert.equal(await issueKid(), oldKid, 'not signing with a key other replicas may not publish yet');

  let kid = await issueKid();
  for (let i = 0; i < 100 && kid !== newKid; i++) {
    await sleep(100);
    kid = await issueKid();
  }
  assert.equal(kid, newKid, 'after the activation delay new tokens use the new key');
  assert.equal((await oidc.tokenIntrospection(config, oldToken)).active, true, 'a token signed by the old key is still active');
});

test('a retired key leaves the JWKS', async () => {
  const retired = await query<{ id: string }>(server, `SELECT id FROM keys WHERE "use" = 'sig' AND retired_at IS NOT NULL`);
  assert.ok(retired.length >= 2, 'rotation scheduled the old keys for retirement');
  await execute(server, `UPDATE keys SET retired_at = ? WHERE "use" = 'sig' AND retired_at IS NOT NULL`, new Date(Date.now() - 1000));
  const count = (await kids()).length;
  let now = count;
  for (let i = 0; i < 30 && now === count; i++) {
    await sleep(100);
    now = (await kids()).length;
  }
  assert.equal(now, count - retired.length);
});
