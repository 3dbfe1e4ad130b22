// The server on a real PostgreSQL: migrations (once, under the advisory lock, same schema as SQLite),
// the protocol in every token mode, a restart, and two replicas on one PostgreSQL and one Redis.
// Skipped, with the reason printed, where the PostgreSQL (or Redis) binaries are not installed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import pg from 'pg';
import { createValidator, type Validator } from '../src/kits/validator/index.ts';
import { readMigrations, runMigrations } from '../src/storage/migrate.ts';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover, signInAndConsent } from './helpers/oauth.ts';
import { postgresSkipReason, startPostgres, type TestPostgres } from './helpers/postgres.ts';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.ts';
import { freePort, onPostgres, root, startServer, tallyArgs, tallyNode, tempDatabase, type TestServer } from './helpers/server.ts';

type Mode = 'reference' | 'jwt' | 'stateless';
const MODES: Mode[] = ['reference', 'jwt', 'stateless'];
const ALL_MIGRATIONS = readMigrations('postgresql').map((m) => m.name);

// In npm test's PostgreSQL pass the whole suite runs on PostgreSQL; this file, which starts a server of
// its own and compares the schema with SQLite's, runs in the SQLite pass only.
const pgSkip = onPostgres ? 'run in the SQLite pass (this file starts a PostgreSQL server of its own)' : postgresSkipReason();
if (pgSkip && !onPostgres) console.log(`# skipping the PostgreSQL tests: ${pgSkip}`);
const redisSkip = pgSkip ?? redisSkipReason();
if (!pgSkip && redisSkip) console.log(`# skipping the two-replica test: ${redisSkip}`);

let postgres: TestPostgres | undefined;
before(async () => {
  if (!pgSkip) postgres = await startPostgres();
});
after(() => postgres?.stop());

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

const newClient = registerClient;
const newUser = registerUser;

const isActive = async (config: oidc.Configuration, token: string) => (await oidc.tokenIntrospection(config, token)).active === true;

async function refreshFails(config: oidc.Configuration, refreshToken: string) {
  await assert.rejects(oidc.refreshTokenGrant(config, refreshToken), (error: any) => error.error === 'invalid_grant');
}

/** Port of a server process (its issuer may name another replica). */
const portOf = (server: TestServer) => server.env.PORT!;

/** The same server addressed at its own port, for helpers that use `server.url` (admin()). */
const direct = (server: TestServer): TestServer => ({ ...server, url: `http://localhost:${portOf(server)}` });

/** openid-client for `issuer`'s metadata, with every request sent to `server`'s own port. */
function discoverAt(issuerServer: TestServer, server: TestServer, client: RegisteredClient): Promise<oidc.Configuration> {
  const issuer = new URL(issuerServer.url);
  const rewrite: oidc.CustomFetch = (url, options) => {
    const target = new URL(url);
    if (target.host === issuer.host) target.host = `localhost:${portOf(server)}`;
    return fetch(target.href, options as RequestInit);
  };
  return oidc.discovery(issuer, client.client_id, undefined, client.client_secret ? oidc.ClientSecretBasic(client.client_secret) : oidc.None(), {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: rewrite,
  });
}

/** The server's error-level log lines, printed so that a 500 in a failing assertion has its cause next to it. */
function printErrors(name: string, server: TestServer | undefined) {
  const errors = (server?.output() ?? '').split('\n').filter((line) => /"level":(50|60)/.test(line));
  if (errors.length) console.log(`# ${name} logged errors:\n${errors.map((line) => `#   ${line}`).join('\n')}`);
}

async function jwksOf(server: TestServer): Promise<unknown> {
  const response = await fetch(`http://localhost:${portOf(server)}/jwks`);
  assert.equal(response.status, 200);
  return response.json();
}

// The three parts use separate databases and run side by side; order matters only inside the protocol part.
describe('PostgreSQL', { skip: pgSkip, concurrency: true }, () => {
  describe('migrations', { concurrency: true }, () => {
    test('runMigrations applies every migration once; a second run applies none', async () => {
      const url = await postgres!.createDatabase();
      assert.ok(ALL_MIGRATIONS.length >= 2);
      assert.deepEqual(await runMigrations(url), ALL_MIGRATIONS);
      assert.deepEqual(await runMigrations(url), []);
      const rows = await sql<{ name: string; checksum: string }>(url, 'SELECT name, checksum FROM _tally_migrations ORDER BY name');
      assert.deepEqual(
        rows.map((r) => r.name),
        ALL_MIGRATIONS,
      );
      for (const row of rows) assert.match(row.checksum, /^[0-9a-f]{64}$/);
    });

    test('three `tally migrate` processes at once → each migration applied exactly once in total', async () => {
      const url = await postgres!.createDatabase();
      const migrate = () =>
        new Promise<string[]>((done, fail) => {
          const child = spawn(tallyNode, [...tallyArgs('cli/index'), 'migrate'], {
            cwd: root,
            env: { ...process.env, DATABASE_URL: url, NODE_NO_WARNINGS: '1' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          let err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('exit', (code) => (code === 0 ? done(JSON.parse(out).applied) : fail(new Error(`tally migrate exited ${code}: ${err}`))));
        });
      const results = await Promise.all([migrate(), migrate(), migrate()]);
      assert.deepEqual(results.flat().sort(), ALL_MIGRATIONS, JSON.stringify(results));
      const rows = await sql<{ n: string }>(url, 'SELECT COUNT(*) AS n FROM _tally_migrations');
      assert.equal(Number(rows[0]!.n), ALL_MIGRATIONS.length);
    });

    test('the PostgreSQL schema matches the SQLite one: tables, columns, nullability, types, indexes', async () => {
      const url = await postgres!.createDatabase();
      await runMigrations(url);
      const sqliteDb = tempDatabase();
      try {
        await runMigrations(`file:${sqliteDb.dbFile}`);
        const PG_TYPES: Record<string, string> = { TEXT: 'text', DATETIME: 'timestamp without time zone', INTEGER: 'integer', BOOLEAN: 'boolean' };
        const lite = new Database(sqliteDb.dbFile, { readonly: true });
        let sqliteColumns: string[];
        let sqliteIndexes: string[];
        try {
          const tables = (lite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map(
            (t) => t.name,
          );
          sqliteColumns = tables.flatMap((table) =>
            (lite.prepare(`PRAGMA table_info("${table}")`).all() as { name: string; type: string; notnull: number; pk: number }[]).map(
              (c) => `${table}.${c.name} ${PG_TYPES[c.type] ?? c.type} ${c.notnull === 0 && c.pk === 0 ? 'NULL' : 'NOT NULL'}`,
            ),
          );
          sqliteIndexes = (
            lite.prepare("SELECT tbl_name || '.' || name AS name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'").all() as {
              name: string;
            }[]
          ).map((i) => i.name);
        } finally {
          lite.close();
        }
        const pgColumns = (
          await sql<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
            url,
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public'",
          )
        ).map((c) => `${c.table_name}.${c.column_name} ${c.data_type} ${c.is_nullable === 'YES' ? 'NULL' : 'NOT NULL'}`);
        assert.deepEqual(pgColumns.sort(), sqliteColumns.sort());
        const pgIndexes = (
          await sql<{ name: string }>(
            url,
            "SELECT tablename || '.' || indexname AS name FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey'",
          )
        ).map((i) => i.name);
        assert.deepEqual(pgIndexes.sort(), sqliteIndexes.sort());
      } finally {
        sqliteDb.cleanup();
      }
    });
  });

  describe('the protocol in every token mode', { concurrency: 1 }, () => {
    let server: TestServer;
    let databaseUrl: string;
    const configs = new Map<Mode, oidc.Configuration>();
    /** One live refresh token per mode, refreshed again after the restart. */
    const keep = new Map<Mode, string>();

    before(async () => {
      databaseUrl = await postgres!.createDatabase();
      server = await startServer({ env: { DATABASE_URL: databaseUrl, ADMIN_API_KEY: ADMIN_KEY } });
    });
    after(async () => {
      printErrors('the server', server);
      await server?.stop();
    });

    describe('each mode', { concurrency: true }, () => {
      for (const mode of MODES) {
        test(`${mode}: client credentials, code flow, rotation, introspection, revocation, reuse, a raced refresh`, async () => {
          const client = await newClient(server, mode);
          const config = await discover(server, client);
          configs.set(mode, config);

          const service = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
          const serviceInfo = await oidc.tokenIntrospection(config, service.access_token);
          assert.equal(serviceInfo.active, true);
          assert.equal(serviceInfo.sub, client.client_id);
          if (mode === 'reference') assert.match(service.access_token, /^[A-Za-z0-9_-]{43}$/);
          else assert.equal(decodeJwt(service.access_token).sub, client.client_id);

          const user = await newUser(server);
          const tokens = await codeFlow(config, user);
          assert.equal(tokens.claims()!.sub, user.id);
          for (const token of [tokens.access_token, tokens.refresh_token!]) {
            const info = await oidc.tokenIntrospection(config, token);
            assert.equal(info.active, true);
            assert.equal(info.sub, user.id);
            assert.equal(info.client_id, client.client_id);
            assert.equal(typeof info.exp, 'number');
            assert.ok(Math.abs(info.iat! - Date.now() / 1000) < 60, `iat is now (${info.iat}), whatever the time zones`);
          }
          assert.equal((await oidc.fetchUserInfo(config, tokens.access_token, user.id)).sub, user.id);

          // Rotation; presenting the rotated refresh token again revokes the grant.
          const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
          assert.notEqual(rotated.refresh_token, tokens.refresh_token);
          assert.equal(await isActive(config, tokens.refresh_token!), false, 'the rotated refresh token is inactive');
          assert.equal(await isActive(config, rotated.access_token), true);
          assert.equal(await isActive(config, rotated.refresh_token!), true);
          await refreshFails(config, tokens.refresh_token!);
          assert.equal(await isActive(config, rotated.access_token), false, 'reuse revoked the new access token');
          assert.equal(await isActive(config, rotated.refresh_token!), false, 'reuse revoked the new refresh token');
          await refreshFails(config, rotated.refresh_token!);

          // The revocation endpoint (RFC 7009), for an access token and for a refresh token.
          await oidc.tokenRevocation(config, service.access_token);
          assert.equal(await isActive(config, service.access_token), false, 'client credentials token revoked at the endpoint');
          const revoked = await codeFlow(config, user);
          await oidc.tokenRevocation(config, revoked.access_token);
          assert.equal(await isActive(config, revoked.access_token), false, 'access token revoked at the endpoint');
          await oidc.tokenRevocation(config, revoked.refresh_token!);
          assert.equal(await isActive(config, revoked.refresh_token!), false, 'refresh token revoked at the endpoint');
          await refreshFails(config, revoked.refresh_token!);

          // A subject revocation through the admin API.
          const other = await newUser(server);
          const victim = await codeFlow(config, other);
          const bulk = await admin(server, 'POST', '/revocations', { subject: other.id });
          assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
          if (mode !== 'stateless') assert.ok(bulk.body.revoked >= 2, `ledger entries revoked: ${bulk.body.revoked}`);
          assert.equal(await isActive(config, victim.access_token), false, 'subject revocation: access token inactive');
          assert.equal(await isActive(config, victim.refresh_token!), false, 'subject revocation: refresh token inactive');
          await refreshFails(config, victim.refresh_token!);

          // One refresh token raced by 8 requests.
          const raced = await codeFlow(config, user);
          const results = await Promise.allSettled(Array.from({ length: 8 }, () => oidc.refreshTokenGrant(config, raced.refresh_token!)));
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
          for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as any).error, 'invalid_grant', `a losing request: ${String(r.reason)}`);

          keep.set(mode, (await codeFlow(config, user)).refresh_token!);
        });
      }
    });

    test('bad input holding a NUL byte (which PostgreSQL text cannot hold) → 4xx, never a 500', async () => {
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      const token = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: form,
        body: 'grant_type=client_credentials&client_id=a%00b&client_secret=x',
      });
      assert.equal(token.status, 401, await token.text());
      const authorize = await fetch(`${server.url}/auth?client_id=a%00b&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`, {
        redirect: 'manual',
      });
      assert.equal(authorize.status, 400);
      const logout = await fetch(`${server.url}/session/end?client_id=a%00b`, { redirect: 'manual' });
      assert.equal(logout.status, 400);

      const client = await newClient(server, 'reference');
      const config = await discover(server, client);
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const browser = new Browser();
      const page = await browser.navigate(url.href);
      const [login] = parseForms(page.html, page.url);
      const wrong = await browser.submit(login!, { username: 'a\u0000b', password: 'password-1' });
      assert.equal(wrong.response.status, 401, 'the login page again, with its error');

      assert.equal((await admin(server, 'GET', '/clients/a%00b')).status, 404);
      assert.equal((await admin(server, 'GET', '/users/a%00b')).status, 404);
      assert.equal((await admin(server, 'GET', '/tokens?subject=a%00b')).status, 200);
      const revoke = await admin(server, 'POST', '/revocations', { subject: 'a\u0000b' });
      assert.equal(revoke.status, 400);
      assert.equal(revoke.body.field, 'subject');
    });

    test('restart on the same database → earlier refresh tokens still refresh, the JWKS is unchanged', async () => {
      assert.equal(keep.size, MODES.length, 'the mode tests ran');
      const jwks = await jwksOf(server);
      assert.equal(await server.stop(), 0);
      server = await startServer({ env: { DATABASE_URL: databaseUrl, ADMIN_API_KEY: ADMIN_KEY, PORT: portOf(server) } });
      assert.deepEqual(await jwksOf(server), jwks);
      for (const mode of MODES) {
        const refreshed = await oidc.refreshTokenGrant(configs.get(mode)!, keep.get(mode)!);
        assert.ok(refreshed.access_token, `${mode}: refreshed after the restart`);
        assert.equal(await isActive(configs.get(mode)!, refreshed.access_token), true);
      }
    });
  });

  describe('two replicas on one PostgreSQL and one Redis', { skip: redisSkip, concurrency: 1 }, () => {
    let redis: TestRedis | undefined;
    let a: TestServer;
    let b: TestServer;
    let databaseUrl: string;
    let validator: Validator | undefined;

    before(async () => {
      redis = await startRedis();
      databaseUrl = await postgres!.createDatabase();
      const [portA, portB] = [await freePort(), await freePort()];
      const shared = { DATABASE_URL: databaseUrl, REDIS_URL: redis!.url, ISSUER: `http://localhost:${portA}`, ADMIN_API_KEY: ADMIN_KEY };
      // Both start together on an empty database: they race to migrate and to create the keys.
      // B runs in another time zone: timestamps written by one replica are read by the other.
      [a, b] = await Promise.all([
        startServer({ env: { ...shared, PORT: String(portA), TZ: 'Asia/Tokyo' } }),
        startServer({ env: { ...shared, PORT: String(portB), TZ: 'America/New_York' } }),
      ]);
    });
    after(async () => {
      await validator?.close();
      printErrors('replica A', a);
      printErrors('replica B', b);
      await Promise.all([a?.stop(), b?.stop()]);
      await redis?.stop();
    });

    test('migrated once, and both publish the same JWKS', async () => {
      const rows = await sql<{ name: string }>(databaseUrl, 'SELECT name FROM _tally_migrations ORDER BY name');
      assert.deepEqual(
        rows.map((r) => r.name),
        ALL_MIGRATIONS,
      );
      const [jwksA, jwksB] = [(await jwksOf(a)) as { keys: unknown[] }, await jwksOf(b)];
      assert.ok(jwksA.keys.length >= 2);
      assert.deepEqual(jwksB, jwksA);
      // The replica that lost the race to create a key did not add its own (one key per use and algorithm).
      const keys = await sql<{ use: string; alg: string; n: string }>(databaseUrl, 'SELECT "use", alg, COUNT(*) AS n FROM keys GROUP BY "use", alg');
      assert.ok(keys.some((k) => k.use === 'sig'));
      for (const k of keys) assert.equal(Number(k.n), 1, `${k.use} ${k.alg} keys`);
    });

    test('a client created on A is usable on B at once; a change on A is enforced by B at once', async () => {
      const client = await newClient(direct(a), 'reference', { grant_types: ['client_credentials'], response_types: [], redirect_uris: undefined });
      const onB = await discoverAt(a, b, client);
      const token = await oidc.clientCredentialsGrant(onB, { scope: 'api:read' });
      assert.match(token.access_token, /^[A-Za-z0-9_-]{43}$/);
      const onA = await discover(a, client);
      assert.equal(await isActive(onA, token.access_token), true, 'a token from B introspects on A');

      const patched = await admin(direct(a), 'PATCH', `/clients/${client.client_id}`, { token_mode: 'jwt' });
      assert.equal(patched.status, 200);
      assert.equal(
        decodeJwt((await oidc.clientCredentialsGrant(onB, { scope: 'api:read' })).access_token).client_id,
        client.client_id,
        'B issues JWTs after the change on A',
      );

      const rotated = await admin(direct(a), 'POST', `/clients/${client.client_id}/secret`);
      assert.equal(rotated.status, 200);
      await assert.rejects(
        oidc.clientCredentialsGrant(onB, { scope: 'api:read' }),
        (error: any) => (error.error ?? error.cause?.[0]?.parameters?.error) === 'invalid_client',
        'the old secret stops working on B',
      );
    });

    for (const mode of MODES) {
      test(`${mode}: authorize on A, code at B, refresh on A, revoke on B, introspect on A → inactive`, async () => {
        const client = await newClient(direct(a), mode);
        const user = await newUser(direct(b));
        const onA = await discover(a, client);
        const onB = await discoverAt(a, b, client);

        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        const url = oidc.buildAuthorizationUrl(onA, {
          redirect_uri: REDIRECT_URI,
          scope: 'openid profile offline_access',
          state,
          prompt: 'consent',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
        });
        assert.equal(url.host, new URL(a.url).host, 'the authorization request goes to A');
        const callback = await signInAndConsent(new Browser(), url.href, user);
        const tokens = await oidc.authorizationCodeGrant(onB, callback, { pkceCodeVerifier: verifier, expectedState: state });
        assert.equal(tokens.claims()!.sub, user.id, 'B exchanged the code issued on A');

        const refreshed = await oidc.refreshTokenGrant(onA, tokens.refresh_token!);
        assert.equal(await isActive(onB, tokens.refresh_token!), false, 'B sees the rotation done on A');
        assert.equal(await isActive(onA, refreshed.access_token), true);
        assert.equal(await isActive(onB, refreshed.access_token), true);

        await oidc.tokenRevocation(onB, refreshed.access_token);
        assert.equal(await isActive(onA, refreshed.access_token), false, 'access token revoked on B, inactive on A');
        await oidc.tokenRevocation(onB, refreshed.refresh_token!);
        assert.equal(await isActive(onA, refreshed.refresh_token!), false, 'refresh token revoked on B, inactive on A');
        await assert.rejects(oidc.refreshTokenGrant(onA, refreshed.refresh_token!), (error: any) => error.error === 'invalid_grant');
      });
    }

    test('a validator on A with Redis drops a token revoked through B within 2 s', async () => {
      const resourceServer = await newClient(direct(a), 'reference', {
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: undefined,
        introspection_audiences: [a.env.ISSUER],
      });
      validator = createValidator({
        issuer: a.url,
        audience: a.url,
        clientId: resourceServer.client_id,
        clientSecret: resourceServer.client_secret!,
        cacheTtlSeconds: 300,
        redisUrl: redis!.url,
      });
      await sleep(200); // lets its Redis subscription start
      for (const mode of ['reference', 'jwt'] as Mode[]) {
        const client = await newClient(direct(a), mode);
        const user = await newUser(direct(a));
        const tokens = await codeFlow(await discover(a, client), user, 'openid offline_access');
        assert.equal((await validator.validate(tokens.access_token)).active, true, `${mode}: valid`);
        assert.equal((await validator.validate(tokens.access_token)).active, true, `${mode}: valid, from the cache`);
        await oidc.tokenRevocation(await discoverAt(a, b, client), tokens.access_token);
        const started = Date.now();
        while ((await validator.validate(tokens.access_token)).active) {
          assert.ok(Date.now() - started < 2000, `${mode}: the validator still accepts the token 2 s after its revocation on B`);
          await sleep(25);
        }
      }
    });
  });
});
