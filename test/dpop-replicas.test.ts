import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { Redis } from 'ioredis';
import { registerClient, startReplicas } from './helpers/admin.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import type { TestServer } from './helpers/server.ts';

// DPoP across replicas (two server processes on one database, and on one Redis): a proof is taken
// once, whichever replica sees it first, even when both see it at the same instant; with DPOP_NONCES,
// a nonce one replica gives works on the other.

const redisSkip = redisSkipReason();

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, jwk: await exportJWK(publicKey) };
}

/** A DPoP proof for the token endpoint of `issuer`. */
function proofFor(key: Key, issuer: string, nonce?: string): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: `${issuer}/token`, jti: randomUUID(), ...(nonce ? { nonce } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .setIssuedAt()
    .sign(key.privateKey);
}

/** A client-credentials request with `proof` to this replica (its own port, whatever the issuer). */
async function tokenRequest(server: TestServer, client: RegisteredClient, proof: string) {
  const response = await fetch(`http://localhost:${server.env.PORT}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop: proof,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api:read' }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, string>, nonce: response.headers.get('dpop-nonce') };
}

const newClient = (server: TestServer) => registerClient(server, 'jwt', { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });

/** The same proofs sent to both replicas at once: each is taken exactly once. */
async function assertEachProofTakenOnce(a: TestServer, b: TestServer, client: RegisteredClient, proof: () => Promise<string>) {
  for (let i = 0; i < 8; i++) {
    const value = await proof();
    const answers = await Promise.all([tokenRequest(a, client, value), tokenRequest(b, client, value)]);
    const taken = answers.filter((answer) => answer.status === 200);
    assert.equal(taken.length, 1, `proof ${i}: taken once, not ${taken.length} times`);
    const refused = answers.find((answer) => answer.status !== 200)!;
    assert.equal(refused.status, 400);
    // Replayed, the same proof is refused by either replica afterwards too.
    for (const server of [a, b]) assert.equal((await tokenRequest(server, client, value)).status, 400);
  }
}

describe('two replicas on one database, with DPOP_NONCES=true', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    [a, b] = await startReplicas({ DPOP_NONCES: 'true' });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('a proof without a nonce gets use_dpop_nonce and a DPoP-Nonce; the retry with it succeeds, on the other replica too', async () => {
    const client = await newClient(a);
    const key = await newKey();
    const first = await tokenRequest(a, client, await proofFor(key, a.url));
    assert.equal(first.status, 400);
    assert.equal(first.body.error, 'use_dpop_nonce');
    assert.ok(first.nonce, 'a DPoP-Nonce header');
    const retry = await tokenRequest(b, client, await proofFor(key, a.url, first.nonce!));
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal(retry.body.token_type, 'DPoP');
    assert.equal((await tokenRequest(a, client, await proofFor(key, a.url, first.nonce!))).status, 200);
  });

  test('a proof replayed on the other replica is refused, even sent to both at the same instant', async () => {
    const client = await newClient(a);
    const key = await newKey();
    const { nonce } = await tokenRequest(a, client, await proofFor(key, a.url));
    await assertEachProofTakenOnce(a, b, client, () => proofFor(key, a.url, nonce!));
  });
});

describe('two replicas on one database and one Redis', { skip: redisSkip }, () => {
  let redis: TestRedis | undefined;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    redis = await startRedis();
    [a, b] = await startReplicas({ REDIS_URL: redis!.url });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('a proof replayed on the other replica is refused, even sent to both at the same instant; the marks are in Redis', async () => {
    const client = await newClient(a);
    const key = await newKey();
    await assertEachProofTakenOnce(a, b, client, () => proofFor(key, a.url));
    const connection = new Redis(redis!.url);
    try {
      const marks = await connection.keys(`tally:replay:${a.url}:*`);
      assert.ok(marks.length >= 8, `marks in Redis: ${marks.length}`);
      const ttl = await connection.pttl(marks[0]!);
      assert.ok(ttl > 0 && ttl <= 600_000, `a mark lives as long as the proof may be used: ${ttl} ms`);
    } finally {
      connection.disconnect();
    }
  });
});
