import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as oidc from 'openid-client';
import { databaseContents } from './helpers/db.ts';
import { createClient, createUser, createWebClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, tempDatabase, type TestServer } from './helpers/server.ts';

test('a restart on the same database invalidates nothing, and the database holds no secret in the clear', async () => {
  const db = tempDatabase();
  after(db.cleanup);
  let server: TestServer = await startServer({ dir: db.dir });
  const web = createWebClient(server);
  const service = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
  const user = createUser(server);
  const config = await discover(server, web);
  const tokens = await codeFlow(config, user);
  const serviceToken = await oidc.clientCredentialsGrant(await discover(server, service), { scope: 'api:read' });
  const jwksBefore = await (await fetch(`${server.url}/jwks`)).json();

  assert.equal(await server.stop(), 0, 'SIGTERM → exit code 0');
  server = await startServer({ dir: db.dir, env: { PORT: server.env.PORT, DATABASE_URL: server.databaseUrl } });
  after(() => server.stop());

  const config2 = await discover(server, web);
  assert.deepEqual(await (await fetch(`${server.url}/jwks`)).json(), jwksBefore, 'same JWKS after the restart');
  assert.equal((await oidc.tokenIntrospection(config2, tokens.access_token)).active, true, 'earlier access token still active');
  // Introspected by the client it was issued to (another client would see it only with introspection_audiences).
  assert.equal((await oidc.tokenIntrospection(await discover(server, service), serviceToken.access_token)).active, true);
  const refreshed = await oidc.refreshTokenGrant(config2, tokens.refresh_token!);
  assert.ok(refreshed.access_token, 'earlier refresh token still refreshes');
  assert.equal((await oidc.fetchUserInfo(config2, refreshed.access_token, user.id)).sub, user.id);

  await server.stop();
  // SQLite: every byte of the file, its WAL and shared memory; PostgreSQL: every column of every row.
  const bytes = await databaseContents(server);
  assert.ok(bytes.length > 0);
  const secrets: Record<string, string> = {
    'access token': tokens.access_token,
    'refresh token': tokens.refresh_token!,
    'rotated refresh token': refreshed.refresh_token!,
    'new access token': refreshed.access_token,
    'id token': tokens.id_token!,
    'client credentials token': serviceToken.access_token,
    'web client secret': web.client_secret!,
    'service client secret': service.client_secret!,
    password: user.password,
  };
  for (const [name, value] of Object.entries(secrets)) {
    assert.ok(!bytes.includes(Buffer.from(value)), `the ${name} is not in the database`);
  }
  // A sanity check that the search itself works: the username is stored in the clear.
  assert.ok(bytes.includes(Buffer.from(user.username)));
});
