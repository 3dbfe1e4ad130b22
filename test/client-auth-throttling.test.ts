import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { basicAuthorization } from '../src/protocol/client-credentials.ts';
import { ADMIN_KEY } from './helpers/admin.ts';
import { createClient, type RegisteredClient } from './helpers/fixtures.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Failed client authentication is throttled per client_id and client IP (tokens/throttle.ts,
// `clientAuth`): beyond 10 failures in 15 minutes from one address, that client is refused there, even
// with its right secret, with 429 invalid_client and Retry-After, on every path (the token endpoint's
// direct answer and oidc-provider's, introspection, the revocation stream); from another address it
// still authenticates. The server trusts loopback, so each test speaks from its own X-Forwarded-For.

let server: TestServer;
let client: RegisteredClient;
before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback' } });
  client = createClient(server, { client_name: 'throttled worker', grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
});
after(() => server.stop());

const form = (path: string, ip: string, secret: string, body: Record<string, string>) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: basicAuthorization(client.client_id, secret), 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
    body: new URLSearchParams(body),
  });
const token = (ip: string, secret = client.client_secret!) => form('/token', ip, secret, { grant_type: 'client_credentials', scope: 'api:read' });

test('ten wrong secrets from one address: the right one is refused there (429 invalid_client, Retry-After) at every endpoint, and works from another address', async () => {
  const attacker = '203.0.113.10';
  for (let i = 0; i < 10; i++) assert.equal((await token(attacker, `wrong-${i}`)).status, 401);
  const refused = await token(attacker);
  assert.equal(refused.status, 429);
  assert.equal((await refused.json()).error, 'invalid_client');
  assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After');

  const introspection = await form('/token/introspection', attacker, client.client_secret!, { token: 'x'.repeat(43) });
  assert.equal(introspection.status, 429);
  const stream = await fetch(`${server.url}/revocations/stream`, {
    headers: { authorization: basicAuthorization(client.client_id, client.client_secret!), 'x-forwarded-for': attacker },
  });
  assert.equal(stream.status, 429);
  assert.equal((await stream.json()).error, 'invalid_client');
  assert.ok(Number(stream.headers.get('retry-after')) > 0);

  const elsewhere = await token('203.0.113.11');
  assert.equal(elsewhere.status, 200, 'the client itself still works from its own address');
  assert.ok((await elsewhere.json()).access_token);
});

test('failures of one client do not count against another from the same address', async () => {
  const ip = '203.0.113.20';
  for (let i = 0; i < 10; i++) assert.equal((await token(ip, `wrong-${i}`)).status, 401);
  const other = createClient(server, { client_name: 'neighbour', grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
  const answer = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: basicAuthorization(other.client_id, other.client_secret!),
      'content-type': 'application/x-www-form-urlencoded',
      'x-forwarded-for': ip,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api:read' }),
  });
  assert.equal(answer.status, 200);
});
