import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { discover } from './helpers/oauth.ts';
import { startRedis } from './helpers/redis.ts';
import { startServer } from './helpers/server.ts';

test('a server holds one pair of Redis connections, whatever it publishes and follows (client changes, revocations)', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server)');
  const server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, REDIS_URL: redis.url } });
  const probe = new Redis(redis.url);
  try {
    // Every use: a client change (published and followed), a token revoked, a bulk revocation.
    const client = (await admin(server, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' })).body;
    assert.equal((await admin(server, 'PATCH', `/clients/${client.client_id}`, { client_name: 'renamed' })).status, 200);
    const config = await discover(server, client);
    await oidc.tokenRevocation(config, (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token);
    assert.equal((await admin(server, 'POST', '/revocations', { client_id: client.client_id })).status, 200);
    await sleep(200);

    const own = await probe.client('ID');
    const others = String(await probe.client('LIST'))
      .trim()
      .split('\n')
      .filter((line) => !line.startsWith(`id=${own} `));
    assert.equal(others.length, 2, `the server's connections:\n${others.join('\n')}`);
    const subscribed = others.filter((line) => / flags=P /.test(line));
    assert.equal(subscribed.length, 1, 'one of them subscribed');
    assert.match(subscribed[0]!, / sub=2 /, 'to both channels it follows: client changes and revocations');
  } finally {
    probe.disconnect();
    await server.stop();
    await redis.stop();
  }
});

test('Redis away for a while: one warning per connection, not one per retry, and a line when it is back', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server)');
  const server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, REDIS_URL: redis.url, LOG_LEVEL: 'info' } });
  const lines = (message: string) =>
    server
      .output()
      .split('\n')
      .filter((line) => line.includes(`"msg":"${message}"`))
      .map((line) => JSON.parse(line) as { role: string; failures?: number });
  try {
    // A client change is published: both connections are open before Redis goes.
    const client = (await admin(server, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' })).body;
    assert.equal((await admin(server, 'PATCH', `/clients/${client.client_id}`, { client_name: 'renamed' })).status, 200);
    await redis.stop();
    // ioredis retries at 50, 100, 150 … ms: a dozen times or more per connection in these 4 s.
    await sleep(4000);
    await redis.restart();
    const back = await server.outputUntil(() => lines('redis connection back').length === 2, 10_000);
    assert.equal(lines('redis connection back').length, 2, back);
    assert.deepEqual(
      lines('redis connection error')
        .map((line) => line.role)
        .sort(),
      ['publisher', 'subscriber'],
      'one warning per connection',
    );
    for (const line of lines('redis connection back')) assert.ok(line.failures! >= 5, `${line.role} retried ${line.failures} times`);
  } finally {
    await server.stop();
    await redis.stop();
  }
});
