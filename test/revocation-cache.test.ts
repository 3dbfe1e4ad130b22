import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createCacheStats } from '../src/lib/cache-stats.ts';
import { sha256 } from '../src/lib/crypto.ts';
import { withRevocationCaches } from '../src/storage/revocation-cache.ts';
import { createRevocationEventStore, eventKey } from '../src/storage/revocation-events.ts';
import { createRevokedTokenStore } from '../src/storage/revoked-tokens.ts';
import { admin, registerClient, registerUser, startReplicas } from './helpers/admin.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import type { TestServer } from './helpers/server.ts';
import { useTestStorage } from './helpers/storage.ts';

// The revoked list and revocation events of stateless access tokens, kept in memory
// (src/storage/revocation-cache.ts): every revocation, in this process or another, still counts.

const opened = useTestStorage();
const CACHEABLE = { cacheable: true };
const HOUR = 3600_000;

function cachedStores(max?: number) {
  const stats = createCacheStats();
  const { db, sql } = opened.storage;
  const plain = { revokedTokens: createRevokedTokenStore(db, sql), revocationEvents: createRevocationEventStore(db, sql) };
  return { stats, plain, ...withRevocationCaches(plain, { stats, ...(max !== undefined ? { max } : {}) }) };
}

const scope = () => ({ subject: `alice-${randomUUID()}`, clientId: `app-${randomUUID()}` });

test('a cacheable read is made once, then answered from memory until forgotten; other reads always read', async () => {
  const { revokedTokens, revocationEvents, plain, stats } = cachedStores();
  const hash = sha256(randomUUID());
  const match = scope();
  assert.equal(await revokedTokens.find(hash, CACHEABLE), undefined);
  assert.deepEqual(await revocationEvents.findMatching(match, CACHEABLE), []);
  // Another process revokes, behind this cache's back (its message has not arrived yet).
  await plain.revokedTokens.add(hash, 'access_token', 'revoked', new Date(Date.now() + HOUR));
  const { kind, value } = eventKey({ clientId: match.clientId });
  await plain.revocationEvents.record(kind, value, new Date(), new Date(Date.now() + HOUR));
  assert.equal(await revokedTokens.find(hash, CACHEABLE), undefined, 'the kept answer');
  assert.deepEqual(await revocationEvents.findMatching(match, CACHEABLE), [], 'the kept answer');
  assert.deepEqual({ ...stats }, { hits: 2, misses: 2 });
  assert.equal((await revokedTokens.find(hash))?.reason, 'revoked', 'a read not marked cacheable reads');
  assert.equal((await revocationEvents.findMatching(match)).length, 1, 'a read not marked cacheable reads');

  // Its message arrives (tokens/revocation/follow.ts): a token revocation names the hash, a bulk one drops all.
  revokedTokens.forget(hash);
  revocationEvents.forget(hash);
  assert.equal((await revokedTokens.find(hash, CACHEABLE))?.reason, 'revoked');
  assert.deepEqual(await revocationEvents.findMatching(match, CACHEABLE), [], 'a token revocation leaves the events kept');
  revocationEvents.forgetAll();
  assert.equal((await revocationEvents.findMatching(match, CACHEABLE)).length, 1);
});

test("this process's revocations are seen at once: a listed token, an event", async () => {
  const { revokedTokens, revocationEvents } = cachedStores();
  const hash = sha256(randomUUID());
  const match = scope();
  assert.equal(await revokedTokens.find(hash, CACHEABLE), undefined);
  assert.deepEqual(await revocationEvents.findMatching(match, CACHEABLE), []);
  assert.equal(await revokedTokens.add(hash, 'access_token', 'revoked', new Date(Date.now() + HOUR)), true);
  assert.equal((await revokedTokens.find(hash, CACHEABLE))?.reason, 'revoked');
  const { kind, value } = eventKey({ subject: match.subject });
  await revocationEvents.record(kind, value, new Date(), new Date(Date.now() + HOUR));
  assert.equal((await revocationEvents.findMatching(match, CACHEABLE)).length, 1);
  // A kept "listed" answer (a revoked token stays revoked) until the token expires, no longer.
  const shortLived = sha256(randomUUID());
  await revokedTokens.add(shortLived, 'access_token', 'revoked', new Date(Date.now() + 200));
  assert.ok(await revokedTokens.find(shortLived, CACHEABLE));
  await opened.storage.db.revokedToken.delete({ where: { lookupHash: shortLived } });
  await sleep(300);
  assert.equal(await revokedTokens.find(shortLived, CACHEABLE), undefined, 'not kept past the token');
});

test('max 0 turns the cache off: every read reads', async () => {
  const { revokedTokens, plain, stats } = cachedStores(0);
  const hash = sha256(randomUUID());
  assert.equal(revokedTokens.enabled, false);
  assert.equal(await revokedTokens.find(hash, CACHEABLE), undefined);
  await plain.revokedTokens.add(hash, 'access_token', 'revoked', new Date(Date.now() + HOUR));
  assert.equal((await revokedTokens.find(hash, CACHEABLE))?.reason, 'revoked');
  assert.deepEqual({ ...stats }, { hits: 0, misses: 0 });
});

// ---- Two replicas of one issuer on one database -------------------------------------------------

/** B's own address (its URL is the shared issuer, A's). */
const own = (server: TestServer): TestServer => ({ ...server, url: `http://localhost:${server.env.PORT}` });

async function revocationCacheHits(server: TestServer): Promise<number> {
  const metrics = await (await fetch(`${own(server).url}/metrics`)).text();
  return Number(/^tally_cache_lookups_total\{cache="revocation",result="hit"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
}

type Revoke = (b: TestServer, token: { value: string; clientId: string; secret: string; subject: string; grantId: string }) => Promise<void>;

const bulk = (body: Record<string, string>) => async (b: TestServer) => assert.equal((await admin(own(b), 'POST', '/revocations', body)).status, 200);

const REVOCATIONS: [string, Revoke][] = [
  [
    'the token (revocation endpoint)',
    async (b, token) => {
      const answer = await fetch(`${own(b).url}/token/revocation`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${token.clientId}:${token.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token: token.value }),
      });
      assert.equal(answer.status, 200);
    },
  ],
  ['its grant', (b, token) => bulk({ grant_id: token.grantId })(b)],
  ['its subject', (b, token) => bulk({ subject: token.subject })(b)],
  ['its client', (b, token) => bulk({ client_id: token.clientId })(b)],
  ['a bulk revocation of subject and client together', (b, token) => bulk({ subject: token.subject, client_id: token.clientId })(b)],
  ['deleting its user', async (b, token) => assert.equal((await admin(own(b), 'DELETE', `/users/${token.subject}`)).status, 204)],
];

function revokedOnTheOtherReplica(env: () => NodeJS.ProcessEnv) {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    [a, b] = await startReplicas(env());
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  for (const [name, revoke] of REVOCATIONS) {
    test(`a stateless access token revoked by ${name} on B is inactive on A within a second, though A kept its check`, async () => {
      const client = await registerClient(a, 'stateless');
      const user = await registerUser(a);
      const config = await discover(a, client);
      const { access_token } = await codeFlow(config, user);
      const hitsBefore = await revocationCacheHits(a);
      for (let i = 0; i < 3; i++) assert.equal((await oidc.tokenIntrospection(config, access_token)).active, true);
      const hits = (await revocationCacheHits(a)) - hitsBefore;
      assert.ok(hits >= 2, `introspections after the first answered from memory (${hits} hits)`);

      await revoke(b, {
        value: access_token,
        clientId: client.client_id,
        secret: client.client_secret!,
        subject: user.id,
        grantId: decodeJwt(access_token).grant_id as string,
      });
      const started = Date.now();
      while ((await oidc.tokenIntrospection(config, access_token)).active) {
        assert.ok(Date.now() - started < 1000, 'still active on A a second after its revocation on B');
        await sleep(20);
      }
    });
  }

  test('a client-credentials token revoked on B is inactive on A within a second; one revoked on A at once', async () => {
    const client = await registerClient(a, 'stateless');
    const config = await discover(a, client);
    const tokens = [
      (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token,
      (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token,
    ];
    for (const token of tokens) for (let i = 0; i < 2; i++) assert.equal((await oidc.tokenIntrospection(config, token)).active, true);
    await oidc.tokenRevocation(config, tokens[0]!);
    assert.equal((await oidc.tokenIntrospection(config, tokens[0]!)).active, false, 'revoked here: at once');
    assert.equal((await oidc.tokenIntrospection(config, tokens[1]!)).active, true, 'its sibling stays active');
    await bulk({ client_id: client.client_id })(b);
    const started = Date.now();
    while ((await oidc.tokenIntrospection(config, tokens[1]!)).active) {
      assert.ok(Date.now() - started < 1000, 'still active on A a second after its client was revoked on B');
      await sleep(20);
    }
  });
}

// Without Redis, the two servers tell each other through the database's revocation feed.
describe('two replicas on one database', () => revokedOnTheOtherReplica(() => ({})));

describe('two replicas on one database and one Redis', { skip: redisSkipReason() }, () => {
  let redis: TestRedis | undefined;
  before(async () => {
    redis = await startRedis();
  });
  revokedOnTheOtherReplica(() => ({ REDIS_URL: redis!.url }));
  // After the replicas have stopped (hooks run in the order they were added).
  after(() => redis?.stop());
});
