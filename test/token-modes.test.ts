import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { databaseContents, query } from './helpers/db.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, type TestServer } from './helpers/server.ts';

type Mode = 'reference' | 'jwt' | 'stateless';
const MODES: Mode[] = ['reference', 'jwt', 'stateless'];

let server: TestServer;

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
});
after(() => server.stop());

const newClient = (mode: Mode, extra: Record<string, unknown> = {}) => registerClient(server, mode, extra);
const newUser = () => registerUser(server);

/** A client, a user and a fresh set of tokens from the code flow. */
async function session(mode: Mode, client?: RegisteredClient) {
  client ??= await newClient(mode);
  const user = await newUser();
  const config = await discover(server, client);
  const tokens = await codeFlow(config, user);
  return { client, user, config, tokens };
}

const isActive = async (config: oidc.Configuration, token: string) => (await oidc.tokenIntrospection(config, token)).active === true;

async function refreshFails(config: oidc.Configuration, refreshToken: string) {
  await assert.rejects(oidc.refreshTokenGrant(config, refreshToken), (error: any) => error.error === 'invalid_grant');
}

/** The grant of a token: from the ledger (reference, jwt) or the stateless JWT's grant_id. */
async function grantOf(mode: Mode, subject: string, accessToken: string): Promise<string> {
  if (mode === 'stateless') return decodeJwt(accessToken).grant_id as string;
  const list = await admin(server, 'GET', `/tokens?subject=${subject}&type=access_token`);
  return list.body.items[0].grant_id;
}

async function countTokenEntries(): Promise<number> {
  return (await query<{ n: number }>(server, "SELECT COUNT(*) AS n FROM token_entries WHERE type IN ('access_token', 'refresh_token')"))[0]!.n;
}

for (const mode of MODES) {
  describe(`${mode} mode`, () => {
    test('tokens have the contract form and introspect active with sub, client_id, scope, exp, iat, token_type', async () => {
      const { client, user, config, tokens } = await session(mode);
      if (mode === 'reference') {
        assert.match(tokens.access_token, /^[A-Za-z0-9_-]{43}$/);
      } else {
        assert.equal(decodeProtectedHeader(tokens.access_token).typ, 'at+jwt');
        const claims = decodeJwt(tokens.access_token);
        for (const claim of ['iss', 'sub', 'aud', 'client_id', 'exp', 'iat', 'jti', 'scope']) assert.ok(claim in claims, `JWT has ${claim}`);
        assert.equal(claims.sub, user.id);
        assert.equal(claims.iss, server.url);
      }
      if (mode === 'stateless') assert.ok(tokens.refresh_token!.length > 43 && !tokens.refresh_token!.includes('.'), 'self-contained refresh token');
      else assert.match(tokens.refresh_token!, /^[A-Za-z0-9_-]{43}$/);
      for (const token of [tokens.access_token, tokens.refresh_token!]) {
        const info = await oidc.tokenIntrospection(config, token);
        assert.equal(info.active, true);
        assert.equal(info.sub, user.id);
        assert.equal(info.client_id, client.client_id);
        assert.match(String(info.scope), /openid/);
        assert.equal(typeof info.exp, 'number');
        assert.equal(typeof info.iat, 'number');
      }
      assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).token_type, 'Bearer');
      assert.equal((await oidc.fetchUserInfo(config, tokens.access_token, user.id)).sub, user.id);

      const service = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
      const info = await oidc.tokenIntrospection(config, service.access_token);
      assert.equal(info.active, true);
      assert.equal(info.sub, client.client_id, 'client credentials: sub = client_id');
      if (mode !== 'reference') assert.equal(decodeJwt(service.access_token).sub, client.client_id);
    });

    const sources: [string, (s: Awaited<ReturnType<typeof session>>) => Promise<void>][] = [
      ['the revocation endpoint', async ({ config, tokens }) => oidc.tokenRevocation(config, tokens.access_token)],
      [
        'a grant revocation',
        async ({ user, tokens }) => {
          const grantId = await grantOf(mode, user.id, tokens.access_token);
          assert.equal((await admin(server, 'POST', '/revocations', { grant_id: grantId })).status, 200);
        },
      ],
      [
        'a subject revocation',
        async ({ user }) => {
          assert.equal((await admin(server, 'POST', '/revocations', { subject: user.id })).status, 200);
        },
      ],
      [
        'a client revocation',
        async ({ client }) => {
          assert.equal((await admin(server, 'POST', '/revocations', { client_id: client.client_id })).status, 200);
        },
      ],
      [
        'deleting the user',
        async ({ user }) => {
          assert.equal((await admin(server, 'DELETE', `/users/${user.id}`)).status, 204);
        },
      ],
    ];
    if (mode !== 'stateless') {
      sources.push([
        'revoking its ledger entries',
        async ({ user }) => {
          const list = await admin(server, 'GET', `/tokens?subject=${user.id}`);
          for (const entry of list.body.items.filter((e: any) => e.type !== 'authorization_code')) {
            const answer = await admin(server, 'POST', `/tokens/${entry.id}/revoke`);
            assert.equal(answer.status, 200);
            assert.equal(answer.body.status, 'revoked');
          }
        },
      ]);
    }

    for (const [name, revoke] of sources) {
      test(`revoked through ${name} → inactive, and the refresh token no longer works`, async () => {
        const s = await session(mode);
        assert.equal(await isActive(s.config, s.tokens.access_token), true);
        await revoke(s);
        assert.equal(await isActive(s.config, s.tokens.access_token), false, 'access token inactive');
        assert.equal(await isActive(s.config, s.tokens.refresh_token!), false, 'refresh token inactive');
        await refreshFails(s.config, s.tokens.refresh_token!);
      });
    }

    test('logout ending the grant (no offline_access) → its access token is inactive', async () => {
      const client = await newClient(mode);
      const user = await newUser();
      const config = await discover(server, client);
      const browser = new Browser();
      const tokens = await codeFlow(config, user, 'openid profile', {}, browser);
      assert.equal(await isActive(config, tokens.access_token), true);
      const logoutUrl = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! });
      const page = await browser.navigate(logoutUrl.href);
      const [form] = parseForms(page.html, page.url);
      assert.ok(form?.fields.xsrf, 'the logout confirmation form');
      const done = await browser.submit(form!, { logout: 'yes' });
      assert.equal(done.response.status, 200);
      assert.equal(await isActive(config, tokens.access_token), false);
    });

    test('deleting the client → its tokens are inactive', async () => {
      const s = await session(mode);
      const resourceServer = await newClient('reference', {
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: undefined,
        introspection_audiences: [server.url],
      });
      const rsConfig = await discover(server, resourceServer);
      assert.equal(await isActive(rsConfig, s.tokens.access_token), true);
      assert.equal((await admin(server, 'DELETE', `/clients/${s.client.client_id}`)).status, 204);
      assert.equal(await isActive(rsConfig, s.tokens.access_token), false);
      assert.equal(await isActive(rsConfig, s.tokens.refresh_token!), false);
      await assert.rejects(oidc.refreshTokenGrant(s.config, s.tokens.refresh_token!));
    });

    test('a subject revocation leaves tokens issued after it (in a later second) active', async () => {
      const client = await newClient(mode);
      const user = await newUser();
      const config = await discover(server, client);
      const before = await codeFlow(config, user);
      await admin(server, 'POST', '/revocations', { subject: user.id });
      await sleep(1100);
      const afterwards = await codeFlow(config, user);
      assert.equal(await isActive(config, before.access_token), false);
      assert.equal(await isActive(config, afterwards.access_token), true);
      assert.ok((await oidc.refreshTokenGrant(config, afterwards.refresh_token!)).access_token);
    });

    test('refresh rotates; replaying the old refresh token revokes the new access and refresh tokens', async () => {
      const { config, tokens } = await session(mode);
      const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      assert.notEqual(rotated.refresh_token, tokens.refresh_token);
      assert.equal(await isActive(config, tokens.refresh_token!), false, 'the used refresh token is inactive');
      assert.equal(await isActive(config, rotated.access_token), true);
      await refreshFails(config, tokens.refresh_token!);
      assert.equal(await isActive(config, rotated.access_token), false, 'reuse revoked the new access token');
      assert.equal(await isActive(config, rotated.refresh_token!), false, 'reuse revoked the new refresh token');
      await refreshFails(config, rotated.refresh_token!);
    });

    test('one refresh token raced by 8 requests → exactly one success', async () => {
      const { config, tokens } = await session(mode);
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => oidc.refreshTokenGrant(config, tokens.refresh_token!)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
    });
  });
}

test('stateless mode: client credentials, code flow and refresh write no access or refresh token entry', async () => {
  const client = await newClient('stateless');
  const user = await newUser();
  const config = await discover(server, client);
  const before = await countTokenEntries();
  const service = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
  const tokens = await codeFlow(config, user);
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  assert.equal(await countTokenEntries(), before, 'no ledger row for any access or refresh token');
  for (const token of [service.access_token, tokens.access_token, refreshed.access_token, refreshed.refresh_token!])
    assert.equal(await isActive(config, token), true);
});

test('switching a client reference → jwt → stateless → reference keeps every live token working', async () => {
  const client = await newClient('reference');
  const user = await newUser();
  const config = await discover(server, client);
  const phases: { mode: Mode; keep: oidc.TokenEndpointResponse; revoked: oidc.TokenEndpointResponse; service: string }[] = [];
  for (const mode of ['reference', 'jwt', 'stateless', 'reference'] as Mode[]) {
    const patched = await admin(server, 'PATCH', `/clients/${client.client_id}`, { token_mode: mode });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.token_mode, mode);
    const keep = await codeFlow(config, user);
    const revoked = await codeFlow(config, user);
    await oidc.tokenRevocation(config, revoked.refresh_token!);
    const service = (await oidc.clientCredentialsGrant(config, { scope: 'api:read' })).access_token;
    assert.equal(mode === 'reference', /^[A-Za-z0-9_-]{43}$/.test(keep.access_token), `${mode}: the new token has the new form`);
    phases.push({ mode, keep, revoked, service });
  }
  for (const [index, phase] of phases.entries()) {
    const label = `phase ${index + 1} (${phase.mode})`;
    assert.equal(await isActive(config, phase.keep.access_token), true, `${label}: access token active`);
    assert.equal(await isActive(config, phase.keep.refresh_token!), true, `${label}: refresh token active`);
    assert.equal(await isActive(config, phase.service), true, `${label}: client credentials token active`);
    assert.equal(await isActive(config, phase.revoked.refresh_token!), false, `${label}: revoked refresh token inactive`);
    assert.equal(await isActive(config, phase.revoked.access_token), false, `${label}: its grant's access token inactive`);
  }
  for (const phase of phases)
    assert.ok((await oidc.refreshTokenGrant(config, phase.keep.refresh_token!)).access_token, `${phase.mode} refresh token refreshes under another mode`);
});

test('the database holds no token value, reference identifier or readable payload', async () => {
  const issued: string[] = [];
  for (const mode of MODES) {
    const { config, tokens, user } = await session(mode);
    const service = await oidc.clientCredentialsGrant(config, { scope: 'api:read' });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    issued.push(tokens.access_token, tokens.refresh_token!, refreshed.access_token, refreshed.refresh_token!, service.access_token, user.password);
    for (const token of [tokens.access_token, refreshed.access_token, service.access_token]) {
      if (token.includes('.')) {
        const claims = decodeJwt(token);
        issued.push(claims.jti!, token.split('.')[1]!);
      }
    }
  }
  const bytes = await databaseContents(server);
  for (const value of issued) assert.ok(!bytes.includes(Buffer.from(value)), `${value.slice(0, 12)}… is not stored`);
  for (const payloadKey of ['"accountId"', '"grantId"', '"kind":"', '"jti"', '"sessionUid"'])
    assert.ok(!bytes.includes(Buffer.from(payloadKey)), `no readable payload (${payloadKey})`);
});
