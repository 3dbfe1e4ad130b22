import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createClient, createUser, createWebClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { onPostgres, startServer } from './helpers/server.ts';

// Packages that only some servers or some requests need are loaded when first needed: each adds 8–30 MiB
// of resident memory to every process (bench/ANALYSIS.md, "Start-up memory"), which the benchmark's peak
// RSS target counts. Passkeys, TOTP and enrolment pages load theirs on use (their own tests show they work).
const ON_DEMAND = ['@simplewebauthn/server', 'otplib', 'qrcode', 'ioredis', 'pg', '@prisma/adapter-pg'];

test('on SQLite without Redis: passkey, TOTP, QR-code, Redis and PostgreSQL packages are loaded neither at start nor by a token or a sign-in', {
  skip: onPostgres && 'the PostgreSQL pass loads pg by design',
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-modules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'packages.txt');
  const server = await startServer({
    nodeArgs: ['--import', join(import.meta.dirname, 'helpers/loaded-packages.mjs')],
    env: { TALLY_TEST_LOADED_PACKAGES: file },
  });
  t.after(() => server.stop());

  const service = createClient(server, { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' });
  const token = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${service.client_id}:${service.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=api%3Aread',
  });
  assert.equal(token.status, 200);
  await codeFlow(await discover(server, createWebClient(server)), createUser(server));

  const loaded = new Set(existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  assert.ok(loaded.has('oidc-provider') && loaded.has('better-sqlite3'), `the hook records packages: ${[...loaded].join(' ')}`);
  assert.deepEqual(
    ON_DEMAND.filter((name) => loaded.has(name)),
    [],
    'loaded though nothing needed them',
  );
});
