import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { basicAuthorization } from '../src/protocol/client-credentials.ts';
import { readEventStream, type ServerSentEvent } from '../src/kits/shared/sse.ts';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { insertRows, query } from './helpers/db.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// GET /revocations/stream: one server-sent event per revocation, for authenticated clients,
// resumable with Last-Event-ID (what was missed first, then a `: connected` mark, then live events).

let server: TestServer;
let reader: { client_id: string; client_secret: string };

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  reader = (await admin(server, 'POST', '/clients', { client_name: 'stream reader', grant_types: ['client_credentials'], response_types: [] })).body;
});
after(() => server.stop());

interface Opened {
  /** Events received so far, and whether the `: connected` mark came. */
  events: ServerSentEvent[];
  connected: () => boolean;
  /** Resolves once `check` holds (polling what was received), failing after `ms`. */
  until(what: string, check: () => boolean, ms?: number): Promise<void>;
  close(): void;
}

async function open(lastEventId?: string): Promise<Opened> {
  const controller = new AbortController();
  const response = await fetch(`${server.url}/revocations/stream`, {
    headers: {
      authorization: basicAuthorization(reader.client_id, reader.client_secret),
      ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}),
    },
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
  return {
    events,
    connected: () => connected,
    async until(what, check, ms = 15_000) {
      const deadline = Date.now() + ms;
      while (!check()) {
        assert.ok(Date.now() < deadline, `${what} within ${ms} ms (received ${events.length} events)`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: () => controller.abort(),
  };
}

const latestId = async () => Number((await query<{ id: number | null }>(server, `SELECT MAX("id") AS "id" FROM "revocation_feed"`))[0]?.id ?? 0);

test('without credentials: 401 invalid_client; a Last-Event-ID that is not an id: 400', async () => {
  const anonymous = await fetch(`${server.url}/revocations/stream`);
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json()).error, 'invalid_client');
  const wrong = await fetch(`${server.url}/revocations/stream`, { headers: { authorization: basicAuthorization(reader.client_id, 'wrong') } });
  assert.equal(wrong.status, 401);
  const bad = await fetch(`${server.url}/revocations/stream`, {
    headers: { authorization: basicAuthorization(reader.client_id, reader.client_secret), 'last-event-id': 'yesterday' },
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error, 'invalid_request');
});

test('live: a revocation made after connecting arrives, named and dated, with an id; earlier ones are not replayed', async () => {
  await admin(server, 'POST', '/revocations', { subject: 'someone-before' });
  const stream = await open();
  try {
    await stream.until('the connected mark', stream.connected);
    await admin(server, 'POST', '/revocations', { subject: 'someone-after' });
    await stream.until('the revocation', () => stream.events.length > 0, 2000);
    assert.equal(stream.events.length, 1, 'only what followed the connection');
    const [event] = stream.events;
    assert.equal(event!.event, 'revocation');
    assert.equal(Number(event!.id), await latestId());
    const message = JSON.parse(event!.data);
    assert.equal(message.type, 'scope');
    assert.equal(message.subject, 'someone-after');
    assert.ok(Math.abs(Date.parse(message.revoked_at) - Date.now()) < 10_000);
  } finally {
    stream.close();
  }
});

test('resumed with Last-Event-ID: what followed that id first, each once and in order, then the mark, then live events', async () => {
  const from = await latestId();
  for (const subject of ['missed-1', 'missed-2', 'missed-3']) await admin(server, 'POST', '/revocations', { subject });
  const stream = await open(String(from));
  try {
    await stream.until('the connected mark', stream.connected);
    assert.deepEqual(
      stream.events.map((e) => JSON.parse(e.data).subject),
      ['missed-1', 'missed-2', 'missed-3'],
    );
    await admin(server, 'POST', '/revocations', { subject: 'live-1' });
    await stream.until('the live revocation', () => stream.events.length === 4, 2000);
    assert.equal(JSON.parse(stream.events[3]!.data).subject, 'live-1');
    const ids = stream.events.map((e) => Number(e.id));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
    );
    assert.ok(ids[0]! > from);
  } finally {
    stream.close();
  }
});

test('a backlog of 12,000 events is replayed whole, a page at a time, before the mark', { timeout: 120_000 }, async () => {
  const from = await latestId();
  const count = 12_000;
  // Seeded straight into the feed table (12,000 revocations through the API would take minutes).
  const seededAt = new Date();
  const rows = Array.from({ length: count }, (_, i) => [
    JSON.stringify({ type: 'token', jti_hash: `seeded-${i + 1}`, revoked_at: seededAt.toISOString() }),
    seededAt,
  ]);
  await insertRows(server, 'revocation_feed', ['event', 'created_at'], rows);
  const stream = await open(String(from));
  try {
    await stream.until('the connected mark', stream.connected, 60_000);
    assert.equal(stream.events.length, count, 'every event of the backlog');
    const hashes = stream.events.map((e) => JSON.parse(e.data).jti_hash);
    assert.equal(new Set(hashes).size, count, 'each once');
    assert.equal(hashes[0], 'seeded-1');
    assert.equal(hashes.at(-1), `seeded-${count}`);
  } finally {
    stream.close();
  }
});
