import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createTokenClient, type TokenClientOptions } from '../src/kits/client/index.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { startRedis, type TestRedis } from './helpers/redis.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let redis: TestRedis | undefined;
const closers: (() => Promise<unknown>)[] = [];
const REDIS_SKIP = 'redis-server not installed: apt-get install redis-server (as .ci/run does)';

before(async () => {
  [server, redis] = await Promise.all([startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } }), startRedis()]);
});
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await Promise.all([server?.stop(), redis?.stop()]);
});

function tokenClient(options: TokenClientOptions) {
  const client = createTokenClient(options);
  closers.push(() => client.close());
  return client;
}

/** The Redis key the client kit shares a token under (as the kit names it). */
const cacheKeyOf = (issuer: string, clientId: string, scope: string) =>
  `tally:token:${createHash('sha256')
    .update(JSON.stringify([issuer, clientId, scope, '']))
    .digest('base64url')}`;

async function introspect(token: string, worker: { client_id: string; client_secret: string }) {
  const response = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${worker.client_id}:${worker.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  return (await response.json()) as { active: boolean; scope?: string };
}

describe('a hostile writer on the shared Redis', () => {
  test('an altered entry, an invented one and one replayed from another key: ignored, counted, and the token handed out is a real one', async (t) => {
    if (!redis) return t.skip(REDIS_SKIP);
    const hostile = new Redis(redis.url);
    closers.push(async () => hostile.disconnect());
    const worker = (
      await admin(server, 'POST', '/clients', { client_name: 'worker', grant_types: ['client_credentials'], response_types: [], scope: 'api:read api:write' })
    ).body;
    const options = { issuer: server.url, clientId: worker.client_id, clientSecret: worker.client_secret, redisUrl: redis.url };
    const reader = tokenClient({ ...options, scope: 'api:read' });
    const writer = tokenClient({ ...options, scope: 'api:write' });
    const readKey = cacheKeyOf(server.url, worker.client_id, 'api:read');
    const writeKey = cacheKeyOf(server.url, worker.client_id, 'api:write');

    const first = await reader.getToken();
    const sealed = await hostile.get(readKey);
    assert.ok(sealed, 'the token is shared under the expected key');

    // Altered: one byte of the sealed entry changed.
    const raw = Buffer.from(sealed, 'base64url');
    raw[20]! ^= 1;
    await hostile.set(readKey, raw.toString('base64url'), 'PX', 60_000);
    const afterAltering = await reader.getToken();
    assert.equal(reader.stats().rejectedCacheEntries, 1);
    assert.notEqual(afterAltering, first, 'a new token was requested rather than the altered entry used');
    assert.equal((await introspect(afterAltering, worker)).active, true);

    // Invented: a token of the writer's choosing, in the clear and as any sealed-looking value.
    for (const invented of [
      JSON.stringify({ accessToken: 'chosen-by-the-attacker', renewAt: Date.now() + 3600_000, expiresAt: Date.now() + 3600_000 }),
      Buffer.from('chosen-by-the-attacker'.repeat(4)).toString('base64url'),
    ]) {
      await hostile.set(readKey, invented, 'PX', 60_000);
      const token = await reader.getToken();
      assert.notEqual(token, 'chosen-by-the-attacker');
      assert.equal((await introspect(token, worker)).active, true);
    }
    assert.equal(reader.stats().rejectedCacheEntries, 3);

    // Replayed: the reader's authentic entry (same secret, same client) under the writer's key.
    const writing = await writer.getToken();
    const readerToken = await reader.getToken();
    await hostile.set(writeKey, (await hostile.get(readKey))!, 'PX', 60_000);
    const afterReplay = await writer.getToken();
    assert.notEqual(afterReplay, readerToken, "the api:read token is not taken from another key's entry");
    assert.notEqual(afterReplay, writing, 'a new token, since the entry under its key was not its own');
    assert.equal(writer.stats().rejectedCacheEntries, 1);
    assert.equal((await introspect(afterReplay, worker)).scope, 'api:write');
  });
});

describe('discovery endpoints pinned to the issuer', () => {
  test('a token_endpoint on another origin: getToken() and ready() reject naming it, the secret never sent; allowedEndpointOrigins lets it through', async () => {
    const authorizations: (string | undefined)[] = [];
    const fake = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') {
        const own = `http://127.0.0.1:${port}`;
        res.end(JSON.stringify({ issuer: own, token_endpoint: `http://localhost:${port}/token`, jwks_uri: `${own}/jwks` }));
      } else if (req.url === '/token') {
        authorizations.push(req.headers.authorization);
        res.end(JSON.stringify({ access_token: 'from-the-allowed-origin', token_type: 'Bearer', expires_in: 300 }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const port = (fake.address() as { port: number }).port;
    closers.push(async () => fake.close());
    const options = { issuer: `http://127.0.0.1:${port}`, clientId: 'worker', clientSecret: 'a secret' };

    const refusing = tokenClient(options);
    const named = (error: Error) => error.name === 'UntrustedEndpointError' && error.message.includes('token_endpoint');
    await assert.rejects(refusing.getToken(), named);
    await assert.rejects(refusing.ready(), named);
    assert.equal((await refusing.fetch(`http://127.0.0.1:${port}/api`).catch((error: Error) => error)) instanceof Error, true);
    assert.deepEqual(authorizations, [], 'the client secret was never sent to the foreign endpoint');

    const allowing = tokenClient({ ...options, allowedEndpointOrigins: [`http://localhost:${port}`] });
    await allowing.ready();
    assert.equal(await allowing.getToken(), 'from-the-allowed-origin');
  });
});
