import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser as PwBrowser, Page } from 'playwright-core';
import { Browser } from './helpers/browser.ts';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.ts';
import { accountSignIn, formTo, totpCode } from './helpers/factors.ts';
import { createUser } from './helpers/fixtures.ts';
import { root, startServer, type TestServer } from './helpers/server.ts';

// Fresh screenshots for docs/ (copied there by hand: a test run leaves tracked files alone).
const DOCS = join(root, 'test-results', 'screenshots');
const skip = chromiumSkipReason();

/** Submits the page's form whose button says `button` and waits for the next page. */
async function press(page: Page, button: string) {
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: button, exact: true }).click()]);
}

describe('the account page in a real browser', { skip }, () => {
  let server: TestServer;
  let browser: PwBrowser;
  before(async () => {
    server = await startServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('sign in, enrol an authenticator (secret read from the page), recovery codes, then the second-factor prompt; no CSP violation', {
    timeout: 120_000,
  }, async () => {
    const user = createUser(server);
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    mkdirSync(DOCS, { recursive: true });

    await page.goto(`${server.url}/account`);
    await page.fill('input[name=username]', user.username);
    await page.fill('input[name=password]', user.password);
    await press(page, 'Sign in');
    assert.equal(await page.locator('#account-username').innerText(), user.username);
    assert.equal(await page.locator('#totp-status').innerText(), 'Off.');
    const csp = (await page.goto(`${server.url}/account`))!.headers()['content-security-policy'] ?? '';
    assert.ok(csp.includes('script-src') && !csp.includes('unsafe-inline'), csp);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'tally_account');
    assert.ok(session?.httpOnly && session.sameSite === 'Strict' && session.path === '/account', JSON.stringify(session));

    // Enrol: the QR code is an image that loads under the CSP; the secret is read from the page.
    await press(page, 'Set up an authenticator');
    const qr = page.locator('.qr img');
    assert.ok((await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)) === true, 'the QR code image is shown');
    await page.screenshot({ path: join(DOCS, 'enrol-authenticator.png'), fullPage: true });
    const secret = (await page.locator('#totp-secret').innerText()).trim();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.match((await page.locator('#totp-uri').textContent()) ?? '', /^otpauth:\/\/totp\/.*secret=/);
    await page.fill('input[name=code]', '000000' === (await totpCode(secret)) ? '111111' : '000000');
    await press(page, 'Turn on');
    assert.match(await page.getByRole('alert').innerText(), /Wrong code/);
    await page.fill('input[name=code]', await totpCode(secret));
    await press(page, 'Turn on');
    assert.match(await page.locator('#totp-status').innerText(), /^On/);

    await press(page, 'Generate recovery codes');
    const codes = await page.locator('#recovery-codes kbd').allInnerTexts();
    assert.equal(codes.length, 10);
    for (const code of codes) assert.match(code, /^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
    await page.goto(`${server.url}/account`);
    assert.match(await page.locator('#recovery-status').innerText(), /^10 unused recovery codes left/);
    await page.screenshot({ path: join(DOCS, 'account-page.png'), fullPage: true });

    // Sign out and in again: after the password, the second-factor prompt.
    await press(page, 'Sign out');
    await page.fill('input[name=username]', user.username);
    await page.fill('input[name=password]', user.password);
    await press(page, 'Sign in');
    assert.match(await page.locator('h1').innerText(), /Two-step verification/);
    await page.screenshot({ path: join(DOCS, 'second-factor-prompt.png'), fullPage: true });
    await page.fill('input[name=code]', codes[3]!);
    await press(page, 'Verify');
    assert.match(await page.locator('#recovery-status').innerText(), /^9 unused recovery codes left/);

    // Remove the authenticator: the password is asked.
    await page.fill('input[name=proof]', 'not-the-password');
    await press(page, 'Remove the authenticator');
    assert.match(await page.getByRole('alert').innerText(), /neither your password nor a code/);
    await page.fill('input[name=proof]', user.password);
    await press(page, 'Remove the authenticator');
    assert.equal(await page.locator('#totp-status').innerText(), 'Off.');
    // (401 pages answer the wrong code and password above, and /favicon.ico is a 404: not problems.)
    assert.deepEqual(
      problems.filter((text) => /Content Security Policy|Refused/i.test(text)),
      [],
      'no CSP violations',
    );
  });

  test('changing the password needs the current one; the new one then signs in', { timeout: 60_000 }, async () => {
    const user = createUser(server);
    const http = new Browser();
    let page = await accountSignIn(http, server, user);
    page = await http.submit(formTo(page.html, page.url, '/account/password'), { current_password: 'wrong-password', new_password: 'a-new-password-1' });
    assert.equal(page.response.status, 401);
    assert.match(page.html, /current password is not right/);
    page = await http.submit(formTo(page.html, page.url, '/account/password'), { current_password: user.password, new_password: 'short' });
    assert.equal(page.response.status, 400);
    page = await http.submit(formTo(page.html, page.url, '/account/password'), { current_password: user.password, new_password: 'a-new-password-1' });
    assert.equal(page.response.status, 200);
    assert.match(page.html, /Your password is changed/);
    await assert.rejects(accountSignIn(new Browser(), server, user), /expected the account page/);
    await accountSignIn(new Browser(), server, { username: user.username, password: 'a-new-password-1' });
  });

  test('a form without the CSRF token of its session is refused; without a session the page asks to sign in', async () => {
    const user = createUser(server);
    const http = new Browser();
    const page = await accountSignIn(http, server, user);
    const form = formTo(page.html, page.url, '/account/recovery-codes');
    const forged = await http.submit({ ...form, fields: { ...form.fields, _csrf: 'forged' } });
    assert.equal(forged.response.status, 403);
    const anonymous = await new Browser().submit(form);
    assert.equal(anonymous.response.status, 401);

    // Repeated fields and no body at all: a refusal, never a 500.
    const fresh = new Browser();
    const signIn = formTo((await fresh.navigate(`${server.url}/account`)).html, `${server.url}/account`, '/account/sign-in');
    const repeated = await fresh.request(signIn.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(signIn.fields._csrf!)}&username=a&username=b&password=x&password=y`,
    });
    assert.equal(repeated.status, 401);
    assert.equal((await fresh.request(signIn.action, { method: 'POST' })).status, 403);
  });
});
