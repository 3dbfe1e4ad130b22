import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Browser as PwBrowser, Request as PwRequest } from 'playwright-core';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.ts';
import { createUser, createWebClient, REDIRECT_URI } from './helpers/fixtures.ts';
import { root, startServer, type TestServer } from './helpers/server.ts';

const RESULTS = join(root, 'test-results');

test('login and consent pages work in a real browser (headless Chromium)', { timeout: 120_000 }, async (t) => {
  const reason = chromiumSkipReason();
  if (reason) {
    console.log(`skipping browser test: ${reason}`);
    t.skip(reason);
    return;
  }

  const server: TestServer = await startServer();
  after(() => server.stop());
  const user = createUser(server);
  const client = createWebClient(server);

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authUrl =
    `${server.url}/auth?client_id=${encodeURIComponent(client.client_id)}&response_type=code&scope=openid%20profile` +
    `&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&state=xyz&code_challenge=${challenge}&code_challenge_method=S256`;

  const browser: PwBrowser = await launchChromium();
  after(() => browser.close());

  const page = await browser.newPage();
  // Anything the page reports (CSP violations show up as console errors) is kept for failure messages.
  const consoleErrors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  const problems = () => `${consoleErrors.length ? `\nbrowser console errors:\n${consoleErrors.join('\n')}` : ''}\nserver output:\n${server.output()}`;

  // The client's redirect URI points at a closed port: answer it in the browser instead.
  const callbacks: PwRequest[] = [];
  await page.route('http://127.0.0.1:9/**', (route) => {
    callbacks.push(route.request());
    return route.fulfill({ status: 200, contentType: 'text/html', body: 'done' });
  });

  mkdirSync(RESULTS, { recursive: true });

  // 1. The authorization request lands on the login page.
  await page.goto(authUrl);
  await page.locator('input[name=username]').waitFor({ state: 'visible' });
  assert.match(await page.title(), /Sign in/);
  assert.ok(page.url().startsWith(`${server.url}/interaction/`), `expected the interaction page, got ${page.url()}`);
  assert.equal(await page.locator('form:has(input[name=password]) input[name=_csrf]').count(), 1);
  await page.screenshot({ path: join(RESULTS, 'login.png'), fullPage: true });

  // 2. A wrong password shows the login form again with an error, and does not reach the client.
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', 'definitely-not-the-password');
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(wrong?.status(), 401);
  const alert = page.getByRole('alert');
  await alert.waitFor({ state: 'visible' });
  assert.match(await alert.innerText(), /Wrong username or password/);
  assert.equal(await page.locator('input[name=username]').count(), 1, 'the login form is shown again');
  assert.ok(page.url().startsWith(`${server.url}/interaction/`), `still on the interaction page, got ${page.url()}`);
  assert.equal(callbacks.length, 0, 'nothing was sent to the client');
  await page.screenshot({ path: join(RESULTS, 'login-error.png'), fullPage: true });

  // 3. The right credentials lead to the consent page.
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  const [consentResponse] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'GET' && r.url().startsWith(`${server.url}/interaction/`), { timeout: 15_000 }),
    page.click('button[type=submit]'),
  ]);
  const allow = page.getByRole('button', { name: 'Allow' });
  await allow.waitFor({ state: 'visible', timeout: 15_000 }).catch((error: Error) => {
    throw new Error(`expected the consent page at ${page.url()}: ${error.message}${problems()}`);
  });
  assert.match(await page.title(), /Allow access/);
  assert.equal(await page.getByRole('button', { name: 'Deny' }).count(), 1);
  assert.match(await page.locator('main').innerText(), /See your name and username/);
  // Allow posts to this origin and is then redirected to the client: Chromium checks form-action on
  // every hop, so the consent page must also allow the client's origin.
  const csp = consentResponse.headers()['content-security-policy'] ?? '';
  assert.ok(csp.includes(`form-action 'self' ${new URL(REDIRECT_URI).origin}`), `consent page CSP: ${csp}`);
  await page.screenshot({ path: join(RESULTS, 'consent.png'), fullPage: true });

  // 4. Allow: the browser follows the redirects to the client with a code and the state.
  const callbackRequest = page.waitForRequest((request) => request.url().startsWith(REDIRECT_URI), { timeout: 15_000 });
  await allow.click();
  const callback = new URL(
    (
      await callbackRequest.catch((error: Error) => {
        throw new Error(`the browser never reached ${REDIRECT_URI} (now at ${page.url()}): ${error.message}${problems()}`);
      })
    ).url(),
  );
  assert.equal(callback.searchParams.get('state'), 'xyz');
  const code = callback.searchParams.get('code');
  assert.ok(code, `expected a code in ${callback.href}`);
  assert.equal(callback.searchParams.get('error'), null);
  assert.deepEqual(
    consoleErrors.filter((text) => /Content Security Policy|form-action/i.test(text)),
    [],
    'no CSP violations',
  );

  // 5. The code is good at the token endpoint.
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret!)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URI }),
  });
  const tokens = (await response.json()) as { access_token?: string; id_token?: string; token_type?: string };
  assert.equal(response.status, 200, `token endpoint said ${JSON.stringify(tokens)}`);
  assert.ok(tokens.access_token, 'an access token is returned');
  assert.ok(tokens.id_token, 'an ID token is returned for the openid scope');
});
