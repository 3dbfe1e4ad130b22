import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import { signInAndConsent } from './helpers/oauth.ts';
import { createUser, createWebClient, REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { startServer, type TestServer } from './helpers/server.ts';

// Every HTML page carries a Content-Security-Policy whose script-src is a nonce made for that response
// (never 'unsafe-inline'), and every inline script of the page carries it: Tally's pages and
// oidc-provider's (logout, device, errors, the form_post page).

let server: TestServer;
let client: RegisteredClient;
let user: { username: string; password: string };
before(async () => {
  server = await startServer();
  client = createWebClient(server);
  user = createUser(server);
});
after(() => server?.stop());

const nonces = new Set<string>();

/** The page's policy holds: a fresh nonce in script-src, nothing inline allowed, every <script> nonced. */
function assertStrictPage(what: string, response: Response, html: string) {
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/, what);
  const policy = response.headers.get('content-security-policy') ?? '';
  const directives = new Map(
    policy
      .split(';')
      .map((d) => d.trim().split(/\s+/) as [string, ...string[]])
      .map(([name, ...values]) => [name, values]),
  );
  const scriptSrc = directives.get('script-src') ?? [];
  assert.equal(scriptSrc.length, 1, `${what}: script-src is one nonce: ${policy}`);
  const nonce = /^'nonce-([A-Za-z0-9+/]{22}==)'$/.exec(scriptSrc[0]!)?.[1];
  assert.ok(nonce, `${what}: script-src is a 16-byte base64 nonce: ${policy}`);
  assert.ok(!nonces.has(nonce), `${what}: the nonce is new for each response`);
  nonces.add(nonce);
  assert.ok(!policy.includes('unsafe-inline'), `${what}: nothing inline allowed: ${policy}`);
  assert.equal(directives.get('default-src')?.join(' '), "'none'", what);
  for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) assert.ok(tag.includes(`nonce="${nonce}"`), `${what}: ${tag} carries the nonce`);
  assert.doesNotMatch(html, /<style\b|\sstyle=/i, `${what}: no inline style`);
  return nonce;
}

function authorizationUrl(extra: Record<string, string> = {}): string {
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  const params = new URLSearchParams({
    client_id: client.client_id,
    response_type: 'code',
    scope: 'openid profile',
    redirect_uri: REDIRECT_URI,
    state: 'xyz',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
  return `${server.url}/auth?${params}`;
}

describe('a strict Content-Security-Policy with a nonce on every HTML page', () => {
  test('login, consent and the form_post page (its auto-submit script carries the nonce)', async () => {
    const browser = new Browser();
    let page = await browser.navigate(authorizationUrl({ response_mode: 'form_post' }));
    assert.match(page.html, /Sign in/);
    assertStrictPage('login page', page.response, page.html);
    page = await browser.submit(parseForms(page.html, page.url)[0]!, { username: user.username, password: user.password });
    assert.match(page.html, /Allow access/);
    assertStrictPage('consent page', page.response, page.html);
    page = await browser.submit(parseForms(page.html, page.url)[0]!);
    assert.equal(page.response.status, 200);
    assert.match(page.html, new RegExp(`<form method="post" action="${REDIRECT_URI}">`));
    assert.match(page.html, /<script\b/, 'the form_post page submits itself with a script');
    assertStrictPage('form_post page', page.response, page.html);
    assert.ok(parseForms(page.html, page.url)[0]!.fields.code, 'the code is posted to the client');
  });

  test('device input, confirmation and success pages', async () => {
    const answer = await fetch(`${server.url}/device/auth`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ scope: 'openid' }),
    });
    const device = (await answer.json()) as { verification_uri: string; user_code: string };
    const browser = new Browser();
    let page = await browser.navigate(device.verification_uri);
    assertStrictPage('device input page', page.response, page.html);
    page = await browser.submit(parseForms(page.html, page.url)[0]!, { user_code: device.user_code });
    assert.match(page.html, /Confirm the device/);
    assertStrictPage('device confirmation page', page.response, page.html);
    page = await browser.submit(parseForms(page.html, page.url)[0]!);
    page = await browser.submit(parseForms(page.html, page.url)[0]!, { username: user.username, password: user.password });
    page = await browser.submit(parseForms(page.html, page.url)[0]!);
    assert.match(page.html, /Device connected/);
    assertStrictPage('device success page', page.response, page.html);
  });

  test('logout: without a session (a self-submitting page), the confirmation and signed-out pages', async () => {
    const sessionless = await new Browser().navigate(`${server.url}/session/end`);
    assert.match(sessionless.html, /<script\b/);
    assertStrictPage('logout page without a session', sessionless.response, sessionless.html);
    const browser = new Browser();
    await signInAndConsent(browser, authorizationUrl(), user);
    let page = await browser.navigate(`${server.url}/session/end`);
    assert.match(page.html, /Sign out\?/);
    assertStrictPage('logout page', page.response, page.html);
    page = await browser.submit(parseForms(page.html, page.url)[0]!, { logout: 'yes' });
    assert.match(page.html, /You are signed out/);
    assertStrictPage('signed-out page', page.response, page.html);
  });

  test("error pages: oidc-provider's and Tally's", async () => {
    const providerError = await fetch(`${server.url}/auth?client_id=nobody&response_type=code&scope=openid`, { headers: { accept: 'text/html' } });
    assert.equal(providerError.status, 400);
    assertStrictPage("oidc-provider's error page", providerError, await providerError.text());
    const appError = await fetch(`${server.url}/interaction/nothing-here`, { headers: { accept: 'text/html' } });
    assert.ok(appError.status >= 400);
    assertStrictPage("Tally's error page", appError, await appError.text());
  });

  test('the stylesheet the pages link to is served from this origin', async () => {
    const css = await fetch(`${server.url}/assets/tally.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    assert.match(await css.text(), /font-family/);
  });
});

test('in Chromium: the form_post page and the logout pages work under the policy, with no CSP violation', { timeout: 120_000 }, async (t) => {
  const skip = chromiumSkipReason();
  if (skip) {
    t.skip(skip);
    return;
  }
  const browser = await launchChromium();
  after(() => browser.close());
  const page = await browser.newPage();
  const messages: string[] = [];
  page.on('console', (message) => messages.push(message.text()));
  page.on('pageerror', (error) => messages.push(String(error)));
  const violations = () => messages.filter((m) => /Content Security Policy/i.test(m));
  // The client's redirect URI points at a closed port: answer it in the browser instead.
  const callbacks: { method: string; body: string }[] = [];
  await page.route('http://127.0.0.1:9/**', (route) => {
    callbacks.push({ method: route.request().method(), body: route.request().postData() ?? '' });
    return route.fulfill({ status: 200, contentType: 'text/html', body: 'done' });
  });

  // Login (styled by the served stylesheet), consent, then the form_post page submits itself to the client.
  await page.goto(authorizationUrl({ response_mode: 'form_post' }));
  await page.fill('input[name=username]', user.username);
  const background = await page
    .locator('button[type=submit]')
    .first()
    .evaluate((button) => getComputedStyle(button).backgroundColor);
  assert.equal(background, 'rgb(36, 86, 211)', 'the stylesheet applies');
  await page.fill('input[name=password]', user.password);
  await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type=submit]')]);
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(`${REDIRECT_URI}*`);
  assert.equal(callbacks.length, 1, violations().join('\n'));
  assert.equal(callbacks[0]!.method, 'POST', 'form_post: the code was posted by the page’s script');
  assert.match(callbacks[0]!.body, /(^|&)code=[^&]+/);

  // Logout: the confirmation page, then signed out.
  await page.goto(`${server.url}/session/end`);
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.getByText('You are signed out').waitFor();
  // Without a session, oidc-provider's self-submitting page carries the user on to the same end.
  await page.goto(`${server.url}/session/end`);
  await page.getByText('You are signed out').waitFor();
  assert.deepEqual(violations(), []);
});
