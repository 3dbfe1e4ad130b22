import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { admin, ADMIN_KEY } from './helpers/admin.ts';
import { Browser, parseForms, type Form } from './helpers/browser.ts';
import { query } from './helpers/db.ts';
import { createWebClient, REDIRECT_URI, unique, type RegisteredClient } from './helpers/fixtures.ts';
import { discover } from './helpers/oauth.ts';
import { startRedis } from './helpers/redis.ts';
import { securityEventCount, startServer, type TestServer } from './helpers/server.ts';

// Throttling of guessing through the real login form and device page (CONTRACT.md, "Interactive
// login and consent"). The server trusts loopback as a proxy, so that each test guesses from its own
// client address (X-Forwarded-For) and the per-address count of one does not touch another.

const ENV = { ADMIN_API_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback' };
let server: TestServer;
let client: RegisteredClient;
before(async () => {
  server = await startServer({ env: ENV });
  client = createWebClient(server);
});
after(() => server.stop());

let addresses = 0;
/** A browser whose requests come from its own client address (as a trusted proxy says). */
class ClientAt extends Browser {
  constructor(readonly ip = `198.51.100.${++addresses}`) {
    super();
  }
  override request(url: string, init: RequestInit = {}) {
    const headers = new Headers(init.headers);
    headers.set('x-forwarded-for', this.ip);
    return super.request(url, { ...init, headers });
  }
}

async function createUser(target = server) {
  const username = unique('user');
  const password = `pw-${unique('secret')}`;
  const answer = await admin(target, 'POST', '/users', { username, password });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { id: answer.body.id as string, username, password };
}

interface Attempt {
  status: number;
  html: string;
  alert: string | undefined;
  retryAfter: string | null;
  /** Signed in: the consent page or the client's redirect came next. */
  signedIn: boolean;
  login: Form | undefined;
}

const configs = new Map<TestServer, Promise<oidc.Configuration>>();

/** The login page of a new authorization request on `target`, in `browser` (with no session: a new visitor). */
async function loginForm(browser: Browser, target = server): Promise<Form> {
  browser.cookies.clear();
  if (!configs.has(target)) configs.set(target, discover(target, target === server ? client : createWebClient(target)));
  const url = oidc.buildAuthorizationUrl(await configs.get(target)!, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const page = await browser.navigate(url.href);
  const [form] = parseForms(page.html, page.url);
  assert.ok(form && 'username' in form.fields, `expected the login page: ${page.html.slice(0, 300)}`);
  return form;
}

/** Submits a login form. */
async function submitLogin(browser: Browser, form: Form, username: string, password: string): Promise<Attempt> {
  const page = await browser.submit(form, { username, password }, REDIRECT_URI);
  const login = parseForms(page.html, page.url).find((f) => 'username' in f.fields);
  return {
    status: page.response.status,
    html: page.html,
    alert: /role="alert"[^>]*>([^<]*)</.exec(page.html)?.[1],
    retryAfter: page.response.headers.get('retry-after'),
    signedIn: !login,
    login,
  };
}

/** A sign-in from the browser's address, on a new login page. */
async function signIn(browser: Browser, username: string, password: string, target = server): Promise<Attempt> {
  return submitLogin(browser, await loginForm(browser, target), username, password);
}

/** A login page loaded ahead, from `ip`: the attempt it makes later is one request (a lockout of 1 s is short). */
async function loginReady(ip: string, target = server): Promise<(username: string, password: string) => Promise<Attempt>> {
  const browser = new ClientAt(ip);
  const form = await loginForm(browser, target);
  return (username, password) => submitLogin(browser, form, username, password);
}

async function failTimes(browser: Browser, username: string, times: number, target = server): Promise<Attempt> {
  let last: Attempt | undefined;
  for (let i = 0; i < times; i++) {
    last = await signIn(browser, username, 'not-the-password', target);
    assert.equal(last.signedIn, false);
  }
  return last!;
}

test('five wrong passwords lock the account: the right one is refused (429, saying when) until the delay passes, then accepted', async () => {
  const user = await createUser();
  const browser = new ClientAt();
  for (let i = 1; i <= 4; i++) {
    const wrong = await signIn(browser, user.username, 'not-the-password');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.alert, 'Wrong username or password.');
  }
  const right = await loginReady(browser.ip);
  const fifth = await signIn(browser, user.username, 'not-the-password');
  assert.equal(fifth.status, 401);
  assert.match(
    fifth.alert!,
    /^Wrong username or password\. Too many failed sign-ins for this username\. Try again in 1 second \(after \d\d:\d\d:\d\d UTC\)\.$/,
  );

  const refused = await right(user.username, user.password);
  assert.equal(refused.status, 429);
  assert.equal(refused.signedIn, false, 'the right password is refused during the lockout');
  assert.match(refused.alert!, /Too many failed sign-ins for this username\. Try again in 1 second/);
  assert.equal(refused.retryAfter, '1');
  assert.ok(refused.login, 'the same form, to try again');

  await sleep(1100);
  assert.equal((await signIn(browser, user.username, user.password)).signedIn, true, 'accepted once the delay passed');
  // A success cleared the count: one more failure does not lock again.
  assert.equal((await signIn(browser, user.username, 'not-the-password')).status, 401);
  assert.equal((await signIn(browser, user.username, user.password)).signedIn, true);
});

test('each further failure doubles the delay: 1 s, then 2 s, then 4 s', async () => {
  const user = await createUser();
  const browser = new ClientAt();
  assert.match((await failTimes(browser, user.username, 5)).alert!, /Try again in 1 second /);
  await sleep(1100);
  const right = await loginReady(browser.ip);
  const sixth = await signIn(browser, user.username, 'not-the-password');
  const sixthAt = Date.now();
  assert.equal(sixth.status, 401, 'counted once the first delay passed');
  assert.match(sixth.alert!, /Try again in 2 seconds /);
  const early = await right(user.username, user.password);
  assert.equal(early.status, 429, 'the right password refused during the 2 s');
  assert.match(early.retryAfter!, /^[12]$/);
  await sleep(sixthAt + 2100 - Date.now());
  assert.equal((await signIn(browser, user.username, 'not-the-password')).alert!.match(/Try again in (\d+ seconds?)/)?.[1], '4 seconds');
});

test('an unknown username gets the same answers as a known one (status and page, apart from the username)', async () => {
  const user = await createUser();
  const unknown = unique('nobody');
  const known = new ClientAt();
  const stranger = new ClientAt();
  const normalise = (attempt: Attempt, username: string) => ({
    status: attempt.status,
    retryAfter: attempt.retryAfter,
    page: attempt.html
      .replaceAll(username, 'USERNAME')
      .replace(/\/interaction\/[\w-]+/g, '/interaction/UID')
      .replace(/name="_csrf" value="[^"]*"/g, 'CSRF')
      .replace(/nonce="[^"]*"/g, 'NONCE')
      .replace(/\d\d:\d\d:\d\d UTC/g, 'TIME'),
  });
  let last: Attempt[] = [];
  for (let i = 1; i <= 5; i++) {
    last = [await signIn(known, user.username, 'not-the-password'), await signIn(stranger, unknown, 'not-the-password')];
    assert.deepEqual(normalise(last[1]!, unknown), normalise(last[0]!, user.username), `attempt ${i}`);
  }
  // During the lockout (1 s), on the pages just answered: both refused, the known one with its right password.
  const [a, b] = await Promise.all([
    submitLogin(known, last[0]!.login!, user.username, user.password),
    submitLogin(stranger, last[1]!.login!, unknown, 'whatever'),
  ]);
  assert.equal(a.status, 429);
  assert.deepEqual(normalise(b, unknown), normalise(a, user.username), 'refused alike');
});

test('the lockout is seen by a second server process on the same database', async () => {
  const second = await startServer({ env: { ...ENV, DATABASE_URL: server.databaseUrl } });
  try {
    const user = await createUser();
    const browser = new ClientAt();
    const right = await loginReady(browser.ip, second);
    await failTimes(browser, user.username, 5);
    const elsewhere = await right(user.username, user.password);
    assert.equal(elsewhere.status, 429);
    assert.match(elsewhere.alert!, /Too many failed sign-ins/);
  } finally {
    await second.stop();
  }
});

test('POST /admin/users/{id}/unlock clears the failures (204); the CLI too; an unknown user is a 404 problem', async () => {
  const user = await createUser();
  const browser = new ClientAt();
  for (let round = 0; round < 2; round++) {
    // Locked for 4 s (the API), 8 s (the CLI, which takes a while to start).
    await failTimes(browser, user.username, 5);
    for (let wait = 1; wait <= 2 ** (round + 1); wait *= 2) {
      await sleep(wait * 1000 + 100);
      await failTimes(browser, user.username, 1);
    }
    assert.equal((await signIn(browser, user.username, user.password)).status, 429);
    if (round === 0) {
      const unlocked = await admin(server, 'POST', `/users/${user.id}/unlock`);
      assert.equal(unlocked.status, 204);
    } else {
      server.cli(['users', 'unlock', '--id', user.id]);
    }
    assert.equal((await signIn(browser, user.username, user.password)).signedIn, true, `unlocked (${round === 0 ? 'admin API' : 'CLI'})`);
  }
  const missing = await fetch(`${server.url}/admin/users/no-such-user/unlock`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type')!, /application\/problem\+json/);
  assert.match(server.cli(['users', 'unlock', '--help']), /tally users unlock --id ID/);
});

test('password spraying: beyond 20 failures from one address across accounts, the next account’s right password is refused there', async () => {
  const users = await Promise.all(Array.from({ length: 22 }, () => createUser()));
  const sprayer = new ClientAt();
  for (const user of users.slice(0, 21)) assert.equal((await signIn(sprayer, user.username, 'Winter2026!')).status, 401);
  const refused = await signIn(sprayer, users[21]!.username, users[21]!.password);
  assert.equal(refused.status, 429);
  assert.equal(refused.signedIn, false);
  assert.match(refused.alert!, /Too many failed sign-ins from your network\. Try again in (\d+ seconds|1[45] minutes)/);
  assert.ok(Number(refused.retryAfter) > 800, `Retry-After ${refused.retryAfter}: the rest of the 15 minutes`);
  assert.equal((await signIn(new ClientAt(), users[21]!.username, users[21]!.password)).signedIn, true, 'from another address it is accepted');
});

test('device user_code guesses: 10 wrong codes from one address, then every code is refused there (429), the right one too', async () => {
  const config = await discover(server, client);
  const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
  const guesser = new ClientAt();
  let page = await guesser.navigate(device.verification_uri);
  for (let i = 1; i <= 10; i++) {
    const [entry] = parseForms(page.html, page.url);
    page = await guesser.submit(entry!, { user_code: `WRONG${String(i).padStart(3, 'X')}` });
    assert.ok(page.response.status < 500 && page.response.status !== 429, `wrong code ${i}: ${page.response.status}`);
    assert.match(page.html, /That code is not valid or has expired/);
  }
  const [entry] = parseForms(page.html, page.url);
  page = await guesser.submit(entry!, { user_code: device.user_code });
  assert.equal(page.response.status, 429);
  assert.match(page.html, /role="alert"[^>]*>Too many wrong codes from your network\. Try again in \d+ (seconds|minutes)/);
  assert.ok(Number(page.response.headers.get('retry-after')) > 800);
  assert.ok('user_code' in parseForms(page.html, page.url)[0]!.fields, 'the same page, to try again later');

  // From another address the right code leads to the confirmation.
  const owner = new ClientAt();
  let ok = await owner.navigate(device.verification_uri);
  ok = await owner.submit(parseForms(ok.html, ok.url)[0]!, { user_code: device.user_code });
  assert.equal(ok.response.status, 200);
  assert.match(ok.html, /name="confirm"/);
});

test('/metrics counts the security events: account_locked, sign_in_failed, address_throttled, user_code_failed', async () => {
  for (const event of ['account_locked', 'sign_in_failed', 'address_throttled', 'user_code_failed']) {
    const count = await securityEventCount(server, event);
    assert.ok(count > 0, `${event}: ${count}`);
  }
  assert.match(server.output(), /"event":"sign_in_failed"/);
  assert.doesNotMatch(server.output(), /not-the-password|Winter2026/, 'never a password in the log');
});

test('with Redis the counts live there: a lockout made on one server is refused by another', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server)');
  const env = { ...ENV, REDIS_URL: redis.url };
  const first = await startServer({ env });
  const second = await startServer({ env: { ...env, DATABASE_URL: first.databaseUrl } });
  try {
    const user = await createUser(first);
    const browser = new ClientAt();
    const right = await loginReady(browser.ip, second);
    await loginForm(browser, first);
    await failTimes(browser, user.username, 5, first);
    const elsewhere = await right(user.username, user.password);
    assert.equal(elsewhere.status, 429);
    const rows = await query<{ n: number }>(first, `SELECT COUNT(*) AS "n" FROM "throttle_counters"`);
    assert.equal(Number(rows[0]!.n), 0, 'nothing counted in the database');
    assert.equal((await admin(second, 'POST', `/users/${user.id}/unlock`)).status, 204);
    assert.equal((await signIn(browser, user.username, user.password, first)).signedIn, true, 'unlocked through the other server');
  } finally {
    await second.stop();
    await first.stop();
    await redis.stop();
  }
});

test('with Redis away, sign-in still works and is still throttled (counted in the database meanwhile), never a 500', async (t) => {
  const redis = await startRedis();
  if (!redis) return t.skip('redis-server not installed (apt-get install redis-server)');
  const target = await startServer({ env: { ...ENV, REDIS_URL: redis.url } });
  try {
    const user = await createUser(target);
    await redis.stop();
    const signedIn = await signIn(new ClientAt(), user.username, user.password, target);
    assert.ok(signedIn.status < 400 && signedIn.signedIn, `signs in while Redis is away (${signedIn.status})`);
    const browser = new ClientAt();
    const right = await loginReady(browser.ip, target);
    await loginForm(browser, target);
    await failTimes(browser, user.username, 5, target);
    const refused = await right(user.username, user.password);
    assert.equal(refused.status, 429, 'locked out although Redis is away');
    const rows = await query<{ n: number }>(target, `SELECT COUNT(*) AS "n" FROM "throttle_counters"`);
    assert.ok(Number(rows[0]!.n) > 0, 'the failures were counted in the database');
    await target.outputMatching(
      /"event":"shared_store_fallback"[^\n]*"store":"throttle_counts"|"store":"throttle_counts"[^\n]*"event":"shared_store_fallback"/,
    );
    const metrics = await (await fetch(`${target.url}/metrics`)).text();
    assert.match(metrics, /tally_security_events_total\{event="shared_store_fallback"\} [1-9]/);
  } finally {
    await target.stop();
    await redis.stop();
  }
});
