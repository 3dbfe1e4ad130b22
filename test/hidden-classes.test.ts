import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { ADMIN_KEY, registerClient, registerResourceServer, registerUser } from './helpers/admin.ts';
import { icLogArgs, icMiss } from './helpers/ic-log.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// On Node 20 an object literal that spreads an ordinary object and then adds fields gets a hidden class
// of its own on every evaluation (src/lib/object-shapes.ts): each field after the spread, and each later
// access to the object, misses V8's inline caches and calls into the runtime. V8's IC log records every
// such miss. After a warm-up, a cache that misses on every request is one of those shapes (or another
// per-request class); a cache that settled misses only while it learns, a handful of times.
//
// The server runs under `--log-ic`; the requests are those that run hottest: client credentials and
// introspection of a client's and of a user's token, in each token mode.

const MODES = ['reference', 'jwt', 'stateless'] as const;
const WARM_UP_ROUNDS = 30;
const ROUNDS = 100;

let server: TestServer;
let dir: string;
let logFile: string;
let resourceServer: RegisteredClient;
const serviceClients = new Map<string, RegisteredClient>();
const userTokens = new Map<string, string>();

const basic = (client: RegisteredClient) => `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;

async function clientCredentials(client: RegisteredClient): Promise<string> {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=api%3Aread',
  });
  const body = (await response.json()) as { access_token?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.access_token!;
}

async function introspect(token: string): Promise<void> {
  const response = await fetch(`${server.url}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basic(resourceServer), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  const body = (await response.json()) as { active?: boolean };
  assert.equal(body.active, true, JSON.stringify(body));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-ic-'));
  logFile = join(dir, 'v8.log');
  server = await startServer({ dir, env: { ADMIN_API_KEY: ADMIN_KEY }, nodeArgs: icLogArgs(logFile) });
  resourceServer = await registerResourceServer(server);
  const user = await registerUser(server);
  for (const mode of MODES) {
    const client = await registerClient(server, mode, { client_name: `${mode} app` });
    serviceClients.set(mode, client);
    const tokens = await codeFlow(await discover(server, client), user, 'openid api:read');
    userTokens.set(mode, tokens.access_token);
  }
});
after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('client credentials and introspection make no inline-cache miss on every request, in any token mode', async () => {
  const rounds = async (count: number) => {
    for (let round = 0; round < count; round++) {
      for (const mode of MODES) {
        await introspect(await clientCredentials(serviceClients.get(mode)!));
        await introspect(userTokens.get(mode)!);
      }
    }
  };
  await rounds(WARM_UP_ROUNDS);
  // What the set-up and the warm-up logged (give or take the log's write buffer) is not counted.
  const measuredFrom = statSync(logFile).size;
  await rounds(ROUNDS);
  await server.stop(); // V8 writes the rest of its log on exit
  const log = readFileSync(logFile, 'latin1');
  assert.match(log, /^(Load|Store)IC,/m, 'the IC log recorded nothing: the test would not see a miss either');
  const misses = new Map<string, number>();
  for (const line of log.slice(measuredFrom).split('\n')) {
    const miss = icMiss(line);
    if (miss) misses.set(miss.site, (misses.get(miss.site) ?? 0) + 1);
  }
  // Each kind of request ran ROUNDS times.
  const everyRequest = [...misses].filter(([, count]) => count >= ROUNDS);
  assert.deepEqual(everyRequest, [], 'inline caches that missed on every request');
});
