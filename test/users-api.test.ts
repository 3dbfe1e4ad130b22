import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { ADMIN_KEY, admin, registerClient, type AdminAnswer } from './helpers/admin.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import type { RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { runCli, startServer, type TestServer } from './helpers/server.ts';

// The users API (CONTRACT, Admin API): list and search, PATCH of each field, roles and disabled in
// every view and never a password hash; a disabled user cannot sign in (answered as a wrong password)
// and their tokens become inactive, for good.

let server: TestServer;
let client: RegisteredClient;
let config: oidc.Configuration;
/** Unique to this run, so that searches see only this file's users. */
const tag = `u${process.pid}${Date.now().toString(36)}`;
let counter = 0;

before(async () => {
  server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
  client = await registerClient(server, 'reference');
  config = await discover(server, client);
});
after(() => server.stop());

async function newUser(fields: Record<string, unknown> = {}) {
  const password = `pw-${randomUUID()}`;
  const answer = await admin(server, 'POST', '/users', { username: `${tag}x${++counter}`, password, ...fields });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { ...answer.body, password } as { id: string; username: string; password: string; roles: string[]; disabled: boolean };
}

/** Every page of GET /admin/users with this query, following next_cursor. */
async function listAll(query: string, limit = 2) {
  const items: { id: string; username: string }[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const answer: AdminAnswer<{ items: { id: string; username: string }[]; next_cursor: string | null }> = await admin(
      server,
      'GET',
      `/users?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.ok(answer.body.items.length <= limit);
    items.push(...answer.body.items);
    cursor = answer.body.next_cursor;
    assert.ok(++pages < 50);
  } while (cursor);
  return items;
}

async function authorizationUrl() {
  return oidc.buildAuthorizationUrl(config, {
    redirect_uri: (client.redirect_uris as string[])[0]!,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  }).href;
}

/** Submits the login form; the answer to the POST itself. */
async function tryLogin(username: string, password: string) {
  const browser = new Browser();
  const page = await browser.navigate(await authorizationUrl());
  const [login] = parseForms(page.html, page.url);
  const answer = await browser.submit(login!, { username, password });
  const alert = /role="alert"[^>]*>([^<]*)</.exec(answer.html)?.[1];
  return { status: answer.response.status, alert };
}

const isActive = async (token: string) => (await oidc.tokenIntrospection(config, token)).active === true;

describe('GET /admin/users', () => {
  test('lists and searches: case-insensitive over username, email and name; % and _ literal; paginated', async () => {
    const a = await newUser({ name: 'Zoë MacGuffin', email: `Grace.${tag}@Example.COM` });
    const b = await newUser({ name: '100% sure' });
    const c = await newUser({ name: '100x sure' });
    const d = await newUser({ name: 'snake_case' });
    const e = await newUser({ name: 'snakeXcase' });
    const ids = (items: { id: string }[]) => items.map((u) => u.id).sort();

    assert.deepEqual(ids(await listAll(`q=${tag.toUpperCase()}`)), ids([a, b, c, d, e]), 'a part of the username, any case');
    assert.deepEqual(ids(await listAll('q=macguffin')), ids([a]), 'a part of the name');
    assert.deepEqual(ids(await listAll(`q=${encodeURIComponent(`grace.${tag}@example`)}`)), ids([a]), 'a part of the email');
    assert.deepEqual(ids(await listAll(`q=${encodeURIComponent('100%')}`)), ids([b]), '% matches itself only');
    assert.deepEqual(ids(await listAll('q=snake_')), ids([d]), '_ matches itself only');
    assert.deepEqual(await listAll('q=no-such-user-anywhere'), []);

    // Without q: everyone, oldest first, each once across pages.
    const everyone = await listAll('', 3);
    assert.equal(new Set(everyone.map((u) => u.id)).size, everyone.length);
    for (const user of [a, b, c, d, e]) assert.ok(everyone.some((u) => u.id === user.id));

    const page = await admin(server, 'GET', `/users?q=${tag}`);
    assert.equal(page.body.next_cursor, null, 'default limit 50');
    for (const item of page.body.items) {
      assert.deepEqual(Object.keys(item).sort(), ['created_at', 'disabled', 'email', 'id', 'name', 'roles', 'username']);
    }
    assert.doesNotMatch(JSON.stringify(page.body), /argon2|password/i);
  });

  test('bad limit, cursor or q → 400 naming it', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['cursor=nonsense', 'cursor'],
      ['q=', 'q'],
      ['q=a&q=b', 'q'],
    ] as const) {
      const answer = await admin(server, 'GET', `/users?${query}`);
      assert.equal(answer.status, 400, query);
      assert.equal(answer.body.field, field, query);
    }
  });
});

describe('POST and PATCH /admin/users', () => {
  test('roles on creation; bad role names and unknown fields → 400 naming the field', async () => {
    const user = await newUser({ roles: ['admin', 'ops:read', 'admin'] });
    assert.deepEqual(user.roles, ['admin', 'ops:read']);
    assert.equal(user.disabled, false);
    for (const [body, field] of [
      [{ roles: ['Admin'] }, 'roles.0'],
      [{ roles: [''] }, 'roles.0'],
      [{ roles: ['x'.repeat(65)] }, 'roles.0'],
      [{ roles: 'admin' }, 'roles'],
      [{ disabled: 'yes' }, 'disabled'],
      [{ password: 'short' }, 'password'],
      [{ email: 'not an email' }, 'email'],
      [{ username: 'renamed' }, 'username'],
      [{ password_hash: 'x' }, 'password_hash'],
    ] as const) {
      const answer = await admin(server, 'PATCH', `/users/${user.id}`, body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(answer.body.field, field, JSON.stringify(body));
    }
    assert.deepEqual((await admin(server, 'GET', `/users/${user.id}`)).body.roles, ['admin', 'ops:read'], 'nothing changed');
    assert.equal((await admin(server, 'PATCH', `/users/${randomUUID()}`, { name: 'x' })).status, 404);
  });

  test('PATCH of each field → 200 the user; a new password works and the old one stops', async () => {
    const user = await newUser({ email: `${tag}@example.com`, name: 'Before' });
    const patch = async (body: Record<string, unknown>) => {
      const answer = await admin(server, 'PATCH', `/users/${user.id}`, body);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.doesNotMatch(JSON.stringify(answer.body), /argon2|password/i);
      return answer.body;
    };
    assert.equal((await patch({ email: `after.${tag}@example.com` })).email, `after.${tag}@example.com`);
    assert.equal((await patch({ name: 'After' })).name, 'After');
    assert.deepEqual((await patch({ roles: ['ops'] })).roles, ['ops']);
    const cleared = await patch({ name: null, email: null, roles: [] });
    assert.deepEqual([cleared.name, cleared.email, cleared.roles], [null, null, []]);
    assert.equal((await patch({ disabled: true })).disabled, true);
    assert.equal((await patch({ disabled: false })).disabled, false);

    const newPassword = `new-${randomUUID()}`;
    await patch({ password: newPassword });
    assert.equal((await tryLogin(user.username, user.password)).status, 401, 'the old password stops working');
    const tokens = await codeFlow(config, { username: user.username, password: newPassword });
    assert.ok(tokens.access_token, 'the new one works');
  });

  test('disabled → sign-in refused exactly as a wrong password; every token inactive; re-enabled → sign-in works, old tokens stay revoked', async () => {
    const user = await newUser();
    const browser = new Browser();
    const before = await codeFlow(config, user, undefined, {}, browser);
    assert.equal(await isActive(before.access_token), true);

    assert.equal((await admin(server, 'PATCH', `/users/${user.id}`, { disabled: true })).status, 200);
    // The session they signed in with gives no more codes: it is asked to sign in again.
    const again = await browser.navigate(await authorizationUrl(), {}, (client.redirect_uris as string[])[0]!);
    assert.ok('username' in (parseForms(again.html, again.url)[0]?.fields ?? {}), `the login page, not a code: ${again.url}`);
    assert.equal(await isActive(before.access_token), false, 'the access token is inactive');
    assert.equal(await isActive(before.refresh_token!), false, 'the refresh token is inactive');
    await assert.rejects(oidc.refreshTokenGrant(config, before.refresh_token!));

    const disabled = await tryLogin(user.username, user.password);
    const wrong = await tryLogin(user.username, 'not-the-password');
    const unknown = await tryLogin(`nobody-${tag}`, 'whatever-password');
    assert.equal(disabled.status, 401);
    assert.match(disabled.alert ?? '', /Wrong username or password/);
    assert.deepEqual(disabled, wrong, 'nothing tells a disabled account from a wrong password');
    assert.deepEqual(disabled, unknown, 'or from an unknown username');

    assert.equal((await admin(server, 'PATCH', `/users/${user.id}`, { disabled: false })).status, 200);
    const after = await codeFlow(config, user);
    assert.equal(await isActive(after.access_token), true, 're-enabled: signs in again');
    assert.equal(await isActive(before.access_token), false, 'the old tokens stay revoked');
    assert.equal(await isActive(before.refresh_token!), false);
  });
});

describe('the CLI', () => {
  const cli = (args: string[], input?: string) => runCli(server.env, args, input);

  test('users create --roles, users list --q, users update; --help on each', () => {
    const username = `${tag}cli`;
    const created = cli(['users', 'create', '--username', username, '--roles', 'admin,ops', '--password-stdin'], 'a long enough password\n');
    assert.equal(created.status, 0, created.stderr);
    const user = JSON.parse(created.stdout);
    assert.deepEqual(user.roles, ['admin', 'ops']);

    const listed = cli(['users', 'list', '--q', username.toUpperCase()]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      JSON.parse(listed.stdout).items.map((u: { id: string }) => u.id),
      [user.id],
    );

    const updated = cli(['users', 'update', '--id', user.id, '--roles', '', '--disabled', 'true', '--name', 'Via CLI']);
    assert.equal(updated.status, 0, updated.stderr);
    assert.deepEqual((({ roles, disabled, name }) => ({ roles, disabled, name }))(JSON.parse(updated.stdout)), { roles: [], disabled: true, name: 'Via CLI' });

    for (const [args, message] of [
      [['users', 'update', '--id', user.id, '--disabled', 'maybe'], /--disabled must be true or false/],
      [['users', 'update', '--id', user.id, '--roles', 'Admin'], /a role name/],
      [['users', 'create', '--username', `${tag}bad`, '--roles', 'a b', '--password-stdin'], /a role name/],
    ] as const) {
      const result = cli([...args], 'a long enough password\n');
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }

    for (const command of ['list', 'update']) {
      const help = cli(['users', command, '--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, new RegExp(`^Usage: tally users ${command}`));
    }
  });
});
