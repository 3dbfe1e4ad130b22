import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { readEventStream, type ServerSentEvent } from '../src/kits/shared/sse.ts';
import { admin, ADMIN_KEY, registerClient } from './helpers/admin.ts';
import { execute } from './helpers/db.ts';
import { discover } from './helpers/oauth.ts';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';

// What the admin console reads besides the contract's older rows: the signing keys (and rotating
// them), the dashboard's statistics per token mode, the count a bulk revocation would reach, and
// the revocation stream for an admin credential.

const MODES = ['reference', 'jwt', 'stateless'] as const;
type Mode = (typeof MODES)[number];
type PerMode = Record<Mode, number>;
interface Stats {
  window_seconds: number;
  bucket_seconds: number;
  buckets: { start: string; issued: PerMode; revoked: PerMode }[];
  totals: { issued: PerMode; revoked: PerMode };
  revocations_live: number;
  stateless_counted: 'shared' | 'this_process';
}

let server: TestServer;
before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, KEY_ACTIVATION_DELAY: '3', KEY_RELOAD_INTERVAL: '1' } });
});
after(() => server.stop());

/** Polls `check` every 100 ms until it holds, failing after `ms`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what} within ${ms} ms`);
    await sleep(100);
  }
}

async function stats(on: TestServer, query = ''): Promise<Stats> {
  const answer = await admin<Stats>(on, 'GET', `/stats${query}`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

const minus = (a: PerMode, b: PerMode): PerMode => ({ reference: a.reference - b.reference, jwt: a.jwt - b.jwt, stateless: a.stateless - b.stateless });

/** A client-credentials client in `mode` and its openid-client configuration. */
async function serviceClient(on: TestServer, mode: Mode) {
  const client = await registerClient(on, mode, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'api:read' });
  return { client, config: await discover(on, client) };
}

describe('GET /admin/stats', () => {
  test('tokens issued and revoked in each mode are counted, bucketed and totalled; revocation events too', async () => {
    const issue = { reference: 3, jwt: 2, stateless: 4 };
    const before = await stats(server);
    assert.equal(before.stateless_counted, 'this_process', 'without Redis each process counts its own stateless tokens');
    const revokedByAdmin: string[] = [];
    for (const mode of MODES) {
      const { client, config } = await serviceClient(server, mode);
      const tokens: string[] = [];
      for (let i = 0; i < issue[mode]; i++) tokens.push((await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token);
      // Revoked by the client (RFC 7009): one reference, two stateless; one jwt through the admin API.
      if (mode === 'reference') await oidc.tokenRevocation(config, tokens[0]!);
      if (mode === 'stateless') for (const token of tokens.slice(0, 2)) await oidc.tokenRevocation(config, token);
      if (mode === 'jwt') {
        const entry = (await admin(server, 'GET', `/tokens?client_id=${client.client_id}&type=access_token`)).body.items[0];
        assert.equal((await admin(server, 'POST', `/tokens/${entry.id}/revoke`)).status, 200);
        revokedByAdmin.push(entry.id);
      }
    }
    const now = await stats(server);
    assert.deepEqual(minus(now.totals.issued, before.totals.issued), issue);
    assert.deepEqual(minus(now.totals.revoked, before.totals.revoked), { reference: 1, jwt: 1, stateless: 2 });
    assert.equal(now.revocations_live - before.revocations_live, 4, 'one revocation event each');

    // 60 buckets of a minute for the default hour, oldest first, the last one holding now; they add up to the totals.
    assert.equal(now.window_seconds, 3600);
    assert.equal(now.bucket_seconds, 60);
    assert.equal(now.buckets.length, 60);
    const starts = now.buckets.map((b) => Date.parse(b.start));
    for (const [i, start] of starts.entries()) {
      assert.equal(start % 60_000, 0, 'whole minutes');
      if (i > 0) assert.equal(start - starts[i - 1]!, 60_000);
    }
    assert.ok(starts.at(-1)! <= Date.now() && Date.now() < starts.at(-1)! + 60_000 + 5_000, 'the last bucket holds now');
    for (const side of ['issued', 'revoked'] as const)
      for (const mode of MODES)
        assert.equal(
          now.buckets.reduce((sum, b) => sum + b[side][mode], 0),
          now.totals[side][mode],
          `${side} ${mode}`,
        );
    const latest = now.buckets.slice(-2);
    assert.ok(latest.reduce((sum, b) => sum + b.issued.stateless, 0) >= issue.stateless, 'the stateless tokens are in the latest buckets');
  });

  test('window_seconds: 60 to 86400 (at most 120 buckets of whole minutes); anything else → 400 naming the field', async () => {
    for (const [window, bucket, count] of [
      [60, 60, 1],
      [7200, 60, 120],
      [7201, 120, 61],
      [86_400, 720, 120],
    ]) {
      const answer = await stats(server, `?window_seconds=${window}`);
      assert.deepEqual([answer.window_seconds, answer.bucket_seconds, answer.buckets.length], [window, bucket, count]);
    }
    for (const bad of ['59', '86401', '0', '-60', '3600.5', '1e3', 'hour', '']) {
      const answer = await admin(server, 'GET', `/stats?window_seconds=${encodeURIComponent(bad)}`);
      assert.equal(answer.status, 400, bad);
      assert.equal(answer.body.field, 'window_seconds');
    }
    assert.equal((await admin(server, 'GET', '/stats?window_seconds=60&window_seconds=120')).status, 400);
    assert.equal((await admin(server, 'GET', '/stats', undefined, 'wrong-key')).status, 401);
  });

  test('with Redis: stateless tokens are counted there, so every replica shows the same count', { skip: redisSkipReason() }, async () => {
    const redis = (await startRedis()) as TestRedis;
    const [portA, portB] = [await freePort(), await freePort()];
    const shared = { ADMIN_API_KEY: ADMIN_KEY, ISSUER: `http://localhost:${portA}`, REDIS_URL: redis.url };
    const a = await startServer({ env: { ...shared, PORT: String(portA) } });
    const b = await startServer({ env: { ...shared, PORT: String(portB), DATABASE_URL: a.databaseUrl } });
    try {
      const onB = { ...b, url: `http://localhost:${portB}` };
      const beforeB = await stats(onB);
      assert.equal(beforeB.stateless_counted, 'shared');
      const { config } = await serviceClient(a, 'stateless');
      for (let i = 0; i < 3; i++) await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      // Counted without waiting for Redis: give the increments a moment to land.
      await until('the count on the other replica', async () => (await stats(onB)).totals.issued.stateless - beforeB.totals.issued.stateless === 3, 5000);
      assert.equal((await stats(a)).totals.issued.stateless, (await stats(onB)).totals.issued.stateless);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    }
  });
});

describe('GET /admin/revocations/preview', () => {
  test('counts exactly the entries the same bulk revocation then revokes', async () => {
    const { client, config } = await serviceClient(server, 'reference');
    const { config: jwtConfig, client: jwtClient } = await serviceClient(server, 'jwt');
    for (let i = 0; i < 3; i++) await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    for (let i = 0; i < 2; i++) await oidc.clientCredentialsGrant(jwtConfig, { scope: 'api:read' });
    const revokedOne = (await admin(server, 'GET', `/tokens?client_id=${client.client_id}`)).body.items[0];
    await admin(server, 'POST', `/tokens/${revokedOne.id}/revoke`);

    for (const [query, body] of [
      [`client_id=${client.client_id}`, { client_id: client.client_id }],
      [`subject=${jwtClient.client_id}&client_id=${jwtClient.client_id}`, { subject: jwtClient.client_id, client_id: jwtClient.client_id }],
    ] as const) {
      const preview = await admin(server, 'GET', `/revocations/preview?${query}`);
      assert.equal(preview.status, 200, JSON.stringify(preview.body));
      assert.equal(preview.body.stateless_not_counted, true);
      const revoked = await admin(server, 'POST', '/revocations', body);
      assert.equal(revoked.status, 200);
      assert.equal(preview.body.matching, revoked.body.revoked, query);
      assert.ok(preview.body.matching > 0, 'something to revoke');
      assert.equal((await admin(server, 'GET', `/revocations/preview?${query}`)).body.matching, 0, 'nothing left to revoke');
    }
    assert.equal((await admin(server, 'GET', `/revocations/preview?client_id=${client.client_id}`)).body.matching, 0);
    assert.equal((await admin(server, 'GET', '/revocations/preview?subject=nobody-at-all')).body.matching, 0);
    // The bulk revocation's rules: at least one field, no other.
    for (const query of ['', '?status=valid', '?subject=', '?subject=a&subject=b']) {
      assert.equal((await admin(server, 'GET', `/revocations/preview${query}`)).status, 400, query);
    }
  });
});

describe('GET /admin/revocations/stream', () => {
  interface Opened {
    events: ServerSentEvent[];
    connected: () => boolean;
    close(): void;
  }

  async function open(credential: string, lastEventId?: string): Promise<Opened> {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/admin/revocations/stream`, {
      headers: { authorization: `Bearer ${credential}`, ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) },
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events: ServerSentEvent[] = [];
    let connected = false;
    void readEventStream(
      response.body!,
      (event) => events.push(event),
      () => undefined,
      (comment) => (connected ||= comment.startsWith('connected')),
    ).catch(() => undefined);
    return { events, connected: () => connected, close: () => controller.abort() };
  }

  test('delivers a revocation made through the admin API, live; resumes with Last-Event-ID', async () => {
    const stream = await open(ADMIN_KEY);
    let lastId: string;
    try {
      await until('the connected mark', stream.connected);
      assert.equal((await admin(server, 'POST', '/revocations', { subject: 'console-live' })).status, 200);
      await until('the revocation', () => stream.events.length > 0, 3000);
      const [event] = stream.events;
      assert.equal(event!.event, 'revocation');
      assert.equal(JSON.parse(event!.data).subject, 'console-live');
      lastId = event!.id!;
    } finally {
      stream.close();
    }
    for (const subject of ['console-missed-1', 'console-missed-2']) await admin(server, 'POST', '/revocations', { subject });
    const resumed = await open(ADMIN_KEY, lastId);
    try {
      await until('the replay', resumed.connected);
      assert.deepEqual(
        resumed.events.map((e) => JSON.parse(e.data).subject),
        ['console-missed-1', 'console-missed-2'],
      );
      assert.ok(
        resumed.events.every((e) => Number(e.id) > Number(lastId)),
        'only what followed',
      );
    } finally {
      resumed.close();
    }
  });

  test('an admin access token opens it; no credentials → 401, a token without scope admin → 403, both problems', async () => {
    const adminClient = await registerClient(server, 'jwt', {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'admin api:read',
    });
    const adminToken = (await oidc.clientCredentialsGrant(await discover(server, adminClient), { scope: 'admin', resource: `${server.url}/admin` }))
      .access_token;
    const opened = await open(adminToken);
    await until('the connected mark', opened.connected);
    opened.close();

    const { config } = await serviceClient(server, 'reference');
    const plainToken = (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
    for (const [authorization, status] of [
      [undefined, 401],
      ['Bearer not-a-credential', 401],
      [`Basic ${Buffer.from('someone:secret').toString('base64')}`, 401],
      [`Bearer ${plainToken}`, 403],
    ] as const) {
      const response = await fetch(`${server.url}/admin/revocations/stream`, { headers: authorization ? { authorization } : {} });
      assert.equal(response.status, status, authorization);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      await response.text();
    }
    const bad = await fetch(`${server.url}/admin/revocations/stream`, { headers: { authorization: `Bearer ${ADMIN_KEY}`, 'last-event-id': 'x' } });
    assert.equal(bad.status, 400);
    await bad.text();
  });
});

describe('GET /admin/keys and POST /admin/keys/rotate', () => {
  interface Key {
    kid: string;
    alg: string;
    status: string;
    created_at: string;
    retires_at: string | null;
  }
  const keys = async (): Promise<Key[]> => {
    const answer = await admin(server, 'GET', '/keys');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.next_cursor, null);
    for (const key of answer.body.items) assert.deepEqual(Object.keys(key).sort(), ['alg', 'created_at', 'kid', 'retires_at', 'status'], 'never key material');
    return answer.body.items;
  };
  const jwks = async () => ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
  const statusOf = (list: Key[], kids: string[]) => kids.map((kid) => list.find((k) => k.kid === kid)?.status);

  test('active, then published beside a rotated key until its activation delay, then retired; the audit row names the new kids', async () => {
    const initial = await keys();
    assert.deepEqual(initial.map((k) => [k.alg, k.status, k.retires_at]).sort(), [
      ['ES256', 'active', null],
      ['RS256', 'active', null],
    ]);
    const oldKids = initial.map((k) => k.kid);

    const rotated = await admin(server, 'POST', '/keys/rotate');
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    const newKeys: Key[] = rotated.body.keys;
    assert.deepEqual(newKeys.map((k) => k.alg).sort(), ['ES256', 'RS256']);
    assert.ok(
      newKeys.every((k) => k.status === 'published' && k.retires_at === null),
      'not signing within the activation delay',
    );
    const newKids = newKeys.map((k) => k.kid);
    const retireAt = rotated.body.previous_keys_retire_at as string;
    assert.ok(Date.parse(retireAt) > Date.now() + 3600_000, 'the old keys outlive the tokens they signed');

    const during = await keys();
    assert.deepEqual(new Set(during.slice(0, 2).map((k) => k.kid)), new Set(newKids), 'newest first');
    const times = during.map((k) => Date.parse(k.created_at));
    assert.deepEqual(
      times,
      times.toSorted((x, y) => y - x),
      'newest first',
    );
    assert.deepEqual(statusOf(during, oldKids), ['active', 'active']);
    assert.deepEqual(
      during.filter((k) => oldKids.includes(k.kid)).map((k) => k.retires_at),
      [retireAt, retireAt],
      'the old keys retire when the rotation said',
    );
    await until('the new keys in the JWKS', async () => {
      const published = await jwks();
      return newKids.every((kid) => published.includes(kid));
    });

    await until('the activation delay to pass', async () => statusOf(await keys(), newKids).every((s) => s === 'active'), 10_000);
    assert.deepEqual(statusOf(await keys(), oldKids), ['published', 'published'], 'the old keys stay published until they retire');

    await execute(server, `UPDATE keys SET retired_at = ? WHERE "use" = 'sig' AND retired_at IS NOT NULL`, new Date(Date.now() - 1000));
    assert.deepEqual(statusOf(await keys(), oldKids), ['retired', 'retired']);
    await until('the retired keys to leave the JWKS', async () => !(await jwks()).some((kid) => oldKids.includes(kid)), 5000);

    const audit = await admin(server, 'GET', '/audit?limit=20');
    const row = audit.body.items.find((item: { action: string }) => item.action === 'rotateKeys');
    assert.ok(row, 'the rotation is audited');
    assert.equal(row.status, 201);
    assert.deepEqual(row.created_id.split(' ').sort(), [...newKids].sort());
  });

  test('rotate takes no body or {}: any field → 400; without admin credentials → 401', async () => {
    assert.equal((await admin(server, 'POST', '/keys/rotate', { kid: 'mine' })).status, 400);
    assert.equal((await admin(server, 'POST', '/keys/rotate', {}, 'wrong-key')).status, 401);
    assert.equal((await admin(server, 'GET', '/keys', undefined, 'wrong-key')).status, 401);
    assert.equal((await admin(server, 'POST', '/keys/rotate', {})).status, 201);
  });
});
