import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { createValidator, type Validator } from '../src/kits/validator/index.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { startRedis } from './helpers/redis.ts';
import { introspectionRequests, startServer, type TestServer } from './helpers/server.ts';
import { discover } from './helpers/oauth.ts';

const clientOf = new Map<string, string>();
const decodeClient = (token: string) => clientOf.get(token)!;

async function tokensFor(server: TestServer) {
  const rs = (await admin(server, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], introspection_audiences: [server.url] })).body;
  const tokens: Record<string, string> = {};
  for (const mode of ['reference', 'jwt', 'stateless']) {
    const client = (await admin(server, 'POST', '/clients', { grant_types: ['client_credentials'], response_types: [], scope: 'api:read', token_mode: mode }))
      .body;
    tokens[mode] = (await oidc.clientCredentialsGrant(await discover(server, client), { scope: 'api:read' })).access_token;
    clientOf.set(tokens[mode]!, client.client_id);
  }
  return { rs, tokens };
}

/** Polls until `check` holds, failing after `ms`. */
async function eventually(what: string, ms: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what} within ${ms} ms`);
    await sleep(50);
  }
}

test('Redis briefly down → the validator keeps answering, still drops revoked tokens, and recovers', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server)');
  after(() => redis.stop());
  const server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, REDIS_URL: redis.url } });
  after(() => server.stop());
  const { rs, tokens } = await tokensFor(server);
  const validator: Validator = createValidator({
    issuer: server.url,
    audience: server.url,
    clientId: rs.client_id,
    clientSecret: rs.client_secret,
    cacheTtlSeconds: 300,
    redisUrl: redis.url,
  });
  after(() => validator.close());
  await sleep(300);
  for (const token of Object.values(tokens)) assert.equal((await validator.validate(token)).active, true);

  await redis.stop();
  for (const token of Object.values(tokens)) assert.equal((await validator.validate(token)).active, true, 'cached and checked results still served');
  await sleep(2200);
  for (const token of Object.values(tokens)) assert.equal((await validator.validate(token)).active, true, 'after the trust bound: revalidated at the issuer');
  // A revocation while Redis is down cannot be published there; the validator no longer trusts its cache.
  await admin(server, 'POST', '/revocations', { client_id: decodeClient(tokens.jwt!) });
  await eventually('revoked jwt token refused while Redis is down', 3000, async () => !(await validator.validate(tokens.jwt!)).active);

  const refusedAt = Date.now();
  await redis.restart();
  await sleep(1500); // ioredis reconnects and subscribes again by itself
  // Redis kept nothing of the revocation made while it was down; back on it, the validator read what it
  // missed from the server. Past the refusal's own cache life, the token is refused locally, not asked about.
  await sleep(Math.max(0, refusedAt + 5_500 - Date.now()));
  const introspections = await introspectionRequests(server);
  assert.equal((await validator.validate(tokens.jwt!)).active, false, 'the token revoked while Redis was down stays refused');
  assert.equal(await introspectionRequests(server), introspections, 'decided locally');
  await admin(server, 'POST', '/revocations', { client_id: decodeClient(tokens.reference!) });
  await eventually('after recovery a revocation arrives through Redis', 2000, async () => !(await validator.validate(tokens.reference!)).active);
  assert.equal((await validator.validate(tokens.stateless!)).active, true, 'unrevoked tokens are still good');
});

test('issuer briefly unreachable → cached results within bounds, then fail closed, then recovery', async () => {
  let server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  const { rs, tokens } = await tokensFor(server);
  const validator = createValidator({ issuer: server.url, audience: server.url, clientId: rs.client_id, clientSecret: rs.client_secret, cacheTtlSeconds: 300 });
  after(() => validator.close());
  await sleep(500);
  for (const token of Object.values(tokens)) assert.equal((await validator.validate(token)).active, true);

  const { dir, env } = server;
  await server.stop();
  for (const token of Object.values(tokens)) assert.equal((await validator.validate(token)).active, true, 'served from the cache just after the drop');
  await sleep(2500);
  for (const [mode, token] of Object.entries(tokens))
    assert.equal((await validator.validate(token)).active, false, `${mode}: fails closed while the issuer cannot confirm`);

  server = await startServer({ dir, env: { ...env } });
  after(() => server.stop());
  await eventually('recovers on its own once the issuer is back', 8000, async () => {
    const results = await Promise.all(Object.values(tokens).map((token) => validator.validate(token)));
    return results.every((r) => r.active);
  });
});

test('close() while the revocation feed is retrying (a wrong secret): the process can exit at once', async () => {
  const server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  after(() => server.stop());
  // In a process of its own: nothing else keeps it alive once the validator is closed.
  const script = `
    import { createValidator } from ${JSON.stringify(new URL('../src/kits/validator/index.ts', import.meta.url).href)};
    const validator = createValidator({ issuer: ${JSON.stringify(server.url)}, audience: ${JSON.stringify(server.url)}, clientId: 'nobody', clientSecret: 'wrong' });
    await new Promise((done) => setTimeout(done, 4500)); // the feed refuses; by now the retry waits 5 s
    await validator.close();
    console.log(Date.now());
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let closedAt = 0;
  child.stdout.on('data', (chunk: Buffer) => (closedAt = Number(String(chunk).trim())));
  const [code] = (await once(child, 'exit')) as [number];
  const lingered = Date.now() - closedAt;
  assert.equal(code, 0);
  assert.ok(closedAt > 0 && lingered < 1000, `exited ${lingered} ms after close()`);
});
