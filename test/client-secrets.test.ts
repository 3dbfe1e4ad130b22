import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { databaseContents, execute, query } from './helpers/db.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { securityEventCount, startServer, type TestServer } from './helpers/server.ts';
import { hashSecret } from '../src/storage/passwords.ts';
import { renderAppErrors } from '../src/http/errors.ts';
import { Overloaded } from '../src/lib/limiter.ts';

// Client secrets are HMAC-SHA-256 values under a server key (sealed by the root key), compared in
// constant time; secrets stored as argon2 hashes before keep working, under client authentication's own
// bounded queue, and are stored again as HMAC on their first success. See storage/client-secrets.ts.

const HMAC_FORM = /^hmac-sha256\$client-secret-1\$[A-Za-z0-9_-]{43}$/;

let server: TestServer;

const basic = (clientId: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** POST /token with client_credentials and HTTP Basic. */
/** `from`: the client address a trusted proxy (loopback) names; by default the test's own. */
async function clientCredentials(target: TestServer, clientId: string, secret: string, from?: string) {
  const response = await fetch(`${target.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basic(clientId, secret),
      ...(from ? { 'x-forwarded-for': from } : {}),
    },
    body: 'grant_type=client_credentials&scope=api:read',
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, retryAfter: response.headers.get('retry-after') };
}

const newClient = (target = server) => registerClient(target, 'reference', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
const storedSecret = async (clientId: string) =>
  (await query<{ secret_hash: string | null }>(server, `SELECT "secret_hash" FROM "clients" WHERE "id" = ?`, clientId))[0]?.secret_hash;

/** A client whose secret is stored as an argon2id hash, as Tally stored secrets before HMAC ones. */
async function legacyClient(target = server): Promise<RegisteredClient & { client_secret: string }> {
  const client = await newClient(target);
  const secret = `legacy-secret-${Math.random()}`;
  assert.equal(await execute(target, `UPDATE "clients" SET "secret_hash" = ? WHERE "id" = ?`, await hashSecret(secret), client.client_id), 1);
  return { ...client, client_secret: secret };
}

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback' } });
});
after(() => server.stop());

describe('client secrets at rest', () => {
  test('new and rotated secrets are stored as HMAC values, never in the clear', async () => {
    const client = await newClient();
    assert.match((await storedSecret(client.client_id)) ?? '', HMAC_FORM);
    assert.equal((await clientCredentials(server, client.client_id, client.client_secret!)).status, 200);
    const rotated = (await admin(server, 'POST', `/clients/${client.client_id}/secret`)).body.client_secret as string;
    assert.match((await storedSecret(client.client_id)) ?? '', HMAC_FORM);
    const contents = await databaseContents(server);
    for (const secret of [client.client_secret!, rotated]) assert.equal(contents.includes(secret), false, 'no client secret in the clear');
  });

  test('a legacy argon2 secret works, is stored again as HMAC on that success, and still works after; a wrong one is refused', async () => {
    const client = await legacyClient();
    const legacy = await storedSecret(client.client_id);
    assert.match(legacy ?? '', /^\$argon2id\$/);
    assert.equal((await clientCredentials(server, client.client_id, 'wrong')).status, 401);
    assert.equal(await storedSecret(client.client_id), legacy, 'a failure changes nothing');
    assert.equal((await clientCredentials(server, client.client_id, client.client_secret)).status, 200);
    assert.match((await storedSecret(client.client_id)) ?? '', HMAC_FORM);
    assert.equal((await clientCredentials(server, client.client_id, client.client_secret)).status, 200);
    assert.equal((await clientCredentials(server, client.client_id, 'wrong')).status, 401);
  });
});

test('a secret rotated on one replica is refused at once on another, without Redis; the new one is accepted there', async () => {
  const other = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, DATABASE_URL: server.databaseUrl } });
  try {
    const client = await newClient();
    // The other replica has the client (and its secret) in its caches.
    for (let i = 0; i < 2; i++) assert.equal((await clientCredentials(other, client.client_id, client.client_secret!)).status, 200);
    const rotated = await admin(server, 'POST', `/clients/${client.client_id}/secret`);
    assert.equal(rotated.status, 200);
    const old = await clientCredentials(other, client.client_id, client.client_secret!);
    assert.equal(old.status, 401);
    assert.equal(old.body.error, 'invalid_client');
    assert.equal((await clientCredentials(other, client.client_id, rotated.body.client_secret)).status, 200);
  } finally {
    await other.stop();
  }
});

test('failed client authentication is a security event, on every path, with the client_id as presented (at most 100 characters)', async () => {
  const client = await newClient();
  const WRONG = 'not-the-secret-3f9c1';
  const before = await securityEventCount(server, 'client_auth_failed');
  // The token endpoint (a direct answer declined to oidc-provider), introspection, and the revocation stream.
  assert.equal((await clientCredentials(server, client.client_id, WRONG)).status, 401);
  const introspection = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.client_id, WRONG) },
    body: 'token=x',
  });
  assert.equal(introspection.status, 401);
  const stream = await fetch(`${server.url}/revocations/stream`, { headers: { authorization: basic(client.client_id, WRONG) } });
  assert.equal(stream.status, 401);
  // An unknown client, with a long id.
  const longId = `unknown-${'x'.repeat(150)}`;
  assert.equal((await clientCredentials(server, longId, WRONG)).status, 401);
  assert.equal((await securityEventCount(server, 'client_auth_failed')) - before, 4);
  const lines = server
    .output()
    .split('\n')
    .filter((line) => line.includes('"event":"client_auth_failed"'));
  assert.ok(lines.some((line) => line.includes(`"client_id":"${client.client_id}"`) && line.includes('"ip":')));
  assert.ok(lines.some((line) => line.includes(`"client_id":"${longId.slice(0, 100)}"`)));
  assert.ok(!lines.some((line) => line.includes(longId.slice(0, 101)) || line.includes(WRONG)), 'truncated, and no secret logged');
});

test('a flood of wrong secrets for an argon2-secret client: beyond the bound 503 temporarily_unavailable with Retry-After, while a correct client gets its token and a login succeeds', async () => {
  const target = await legacyClient();
  const good = await newClient();
  const web = await registerClient(server, 'reference');
  const user = await registerUser(server);
  const config = await discover(server, web);
  const before = { failed: await securityEventCount(server, 'client_auth_failed'), overloaded: await securityEventCount(server, 'overloaded') };

  // From 200 addresses, as a botnet would guess: the per-address throttle of client authentication
  // (a 429 after 10 failures from one address) never starts, and the argon2 bound is what refuses.
  const flood = Promise.all(Array.from({ length: 200 }, (_, i) => clientCredentials(server, target.client_id, `wrong-${i}`, `198.51.100.${i + 1}`)));
  // During the flood: a client with an HMAC secret, and a person signing in through the login form.
  const [token, login] = await Promise.all([clientCredentials(server, good.client_id, good.client_secret!), codeFlow(config, user, 'openid')]);
  const answers = await flood;

  assert.equal(token.status, 200);
  assert.ok(login.access_token);
  const refused = answers.filter((a) => a.status === 503);
  const failed = answers.filter((a) => a.status === 401);
  assert.equal(refused.length + failed.length, answers.length, 'each wrong secret is refused: 401, or 503 beyond the bound');
  assert.ok(refused.length > 0, 'beyond the bound, requests are refused rather than queued');
  for (const answer of refused) {
    assert.equal(answer.body.error, 'temporarily_unavailable');
    assert.ok(Number(answer.retryAfter) > 0, 'Retry-After');
  }
  assert.equal((await securityEventCount(server, 'overloaded')) - before.overloaded, refused.length);
  assert.equal((await securityEventCount(server, 'client_auth_failed')) - before.failed, failed.length);
  // The bound holds nothing back once the flood is over.
  assert.equal((await clientCredentials(server, target.client_id, target.client_secret)).status, 200);
});

test('sign-in work refused at its bound: a readable 503 page for people (Retry-After), JSON elsewhere, each reported as overloaded', async () => {
  const reported: { event: string; fields: Record<string, unknown> }[] = [];
  const security = { report: (event: string, fields: Record<string, unknown> = {}) => void reported.push({ event, fields }) };
  const logger = { error: () => undefined, warn: () => undefined };
  const app = express();
  app.post(['/interaction/:uid/login', '/revocations/stream'], () => {
    throw new Overloaded('sign_in');
  });
  app.use(renderAppErrors({ events: new EventEmitter(), logger, security } as never));
  const listening = app.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
  try {
    const page = await fetch(`${base}/interaction/abc/login`, { method: 'POST', headers: { accept: 'text/html' } });
    assert.equal(page.status, 503);
    assert.ok(Number(page.headers.get('retry-after')) > 0);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /too many requests/i);
    const json = await fetch(`${base}/revocations/stream`, { method: 'POST' });
    assert.equal(json.status, 503);
    assert.ok(Number(json.headers.get('retry-after')) > 0);
    assert.equal(((await json.json()) as { error: string }).error, 'temporarily_unavailable');
    assert.deepEqual(
      reported.map((r) => [r.event, r.fields.work, r.fields.path]),
      [
        ['overloaded', 'sign_in', '/interaction/abc/login'],
        ['overloaded', 'sign_in', '/revocations/stream'],
      ],
    );
  } finally {
    listening.close();
  }
});
