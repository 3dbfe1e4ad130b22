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
