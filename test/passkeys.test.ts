import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import type { BrowserContext, CDPSession, Browser as PwBrowser, Page } from 'playwright-core';
import { ADMIN_KEY, admin } from './helpers/admin.ts';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.ts';
import { databaseContents, query } from './helpers/db.ts';
import { createUser, createWebClient, REDIRECT_URI } from './helpers/fixtures.ts';
import { keyPair } from './helpers/key-pairs.ts';
import { authorizationRequest, discover } from './helpers/oauth.ts';
import { root, startServer, type TestServer } from './helpers/server.ts';

// Fresh screenshots for docs/ (copied there by hand: a test run leaves tracked files alone).
const DOCS = join(root, 'test-results', 'screenshots');
const MFA = 'urn:tally:acr:mfa';
const skip = chromiumSkipReason();
type User = ReturnType<typeof createUser>;

/** Clicks the button and waits for the page it leads to (the client's callback, on a port Chromium will not open, is seen as a request). */
async function press(page: Page, button: string) {
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: button, exact: true }).click()]).catch((error: Error) => {
    if (!/ERR_UNSAFE_PORT/.test(error.message)) throw error;
  });
}

/**
 * A CDP virtual authenticator on the page's tab (resident keys, user verification, presence answered by
 * itself); `backupEligible`: a synced passkey's flags (BE), as a platform keychain sets them.
 */
async function addAuthenticator(page: Page, backupEligible = false): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
      ...(backupEligible ? { defaultBackupEligibility: true, defaultBackupState: true } : {}),
    },
  });
  return { cdp, authenticatorId };
}

/** A page of its own context (cookies apart), with the callback answered in place of the unreachable client. */
async function newPage(browser: PwBrowser): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy|Refused/i.test(message.text())) problems.push(message.text());
  });
  return { context, page, problems };
}

async function accountSignIn(page: Page, server: TestServer, user: User) {
  await page.goto(`${server.url}/account`);
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await press(page, 'Sign in');
}

async function enrolPasskey(page: Page, label: string) {
  await page.locator('#passkey-enrol').waitFor({ state: 'visible' });
  await page.fill('#passkey-label', label);
  await press(page, 'Add a passkey');
  assert.match(await page.locator('.notice').innerText(), new RegExp(`passkey “${label}” is added`));
}

/** The code flow in the browser: `signIn` gets the page from the login page to consent or the callback; then the ID token's claims. */
async function codeFlowInBrowser(page: Page, config: oidc.Configuration, signIn: () => Promise<void>) {
  const request = await authorizationRequest(config, 'openid profile');
  const callbackRequest = page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI), { timeout: 60_000 });
  let callback: string | undefined;
  void callbackRequest.then((r) => (callback = r.url())).catch(() => {});
  await page.goto(request.url.href);
  await signIn();
  // The consent page, unless the sign-in went straight on to the client.
  await Promise.race([callbackRequest, page.getByRole('button', { name: 'Allow', exact: true }).waitFor()]);
  if (!callback) await press(page, 'Allow');
  callback = (await callbackRequest).url();
  const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: request.verifier, expectedState: request.state });
  return tokens.claims()!;
}

describe('passkeys in a real browser (CDP virtual authenticators)', { skip }, () => {
  let server: TestServer;
  let browser: PwBrowser;
  let config: oidc.Configuration;
  before(async () => {
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY } });
    assert.ok(server.url.startsWith('http://localhost:'), 'WebAuthn needs a secure context: http://localhost is one');
    config = await discover(server, createWebClient(server));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('enrol on the account page, rename; then passwordless sign-in → amr hwk user mfa, the mfa acr; CSP strict; no private key stored', {
    timeout: 120_000,
  }, async () => {
    const user = createUser(server);
    const { page, problems } = await newPage(browser);
    const { cdp, authenticatorId } = await addAuthenticator(page);
    mkdirSync(DOCS, { recursive: true });

    await accountSignIn(page, server, user);
    const csp = (await page.goto(`${server.url}/account`))!.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'nonce-[^']+'(;|$)/, csp);
    assert.ok(!csp.includes('unsafe-inline'), csp);
    assert.equal(await page.locator('script:not([src])').count(), 0, 'no inline script on the page');
    assert.match(await page.locator('#passkeys-status').innerText(), /^None/);
    await enrolPasskey(page, 'Laptop');
    assert.deepEqual(await page.locator('.passkey-name').allInnerTexts(), ['Laptop']);
    await server.outputMatching(/"kind":"passkey".*"event":"factor_enrolled"|"event":"factor_enrolled".*"kind":"passkey"/);

    await page.fill('input[id^=rename-]', 'Work laptop');
    await press(page, 'Rename');
    assert.deepEqual(await page.locator('.passkey-name').allInnerTexts(), ['Work laptop']);
    await page.screenshot({ path: join(DOCS, 'passkeys-account.png'), fullPage: true });

    // The database: no private key; the public key sealed; the credential id (not secret) is the positive control.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.ok(credentials[0]!.isResidentCredential, 'a resident (discoverable) key');
    const jwk = createPrivateKey({ key: Buffer.from(credentials[0]!.privateKey, 'base64'), format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
    const bytes = await databaseContents(server);
    const credentialId = Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url');
    assert.ok(bytes.includes(Buffer.from(credentialId)), 'positive control: the credential id is found');
    for (const [name, value] of [
      ['private key d', jwk.d!],
      ['public key x', jwk.x!],
    ] as const) {
      const raw = Buffer.from(value, 'base64url');
      for (const form of [raw, Buffer.from(value), Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('base64'))])
        assert.ok(!bytes.includes(form), `${name} is not in the database`);
    }

    // Passwordless through a real code flow: the login page's passkey button.
    const loginResponse = await page.goto((await authorizationRequest(config, 'openid')).url.href);
    const loginCsp = loginResponse!.headers()['content-security-policy'] ?? '';
    assert.ok(loginCsp.includes("script-src 'nonce-") && !loginCsp.includes('unsafe-inline'), loginCsp);
    const claims = await codeFlowInBrowser(page, config, () => press(page, 'Sign in with a passkey'));
    assert.equal(claims.sub, user.id);
    assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    assert.equal(claims.acr, MFA);
    assert.deepEqual(problems, [], 'no CSP violations');
  });

  test('password, then a (synced) passkey as the second factor → amr pwd swk user mfa; the account page asks for it too', { timeout: 120_000 }, async () => {
    const user = createUser(server);
    const { page, problems } = await newPage(browser);
    await addAuthenticator(page, true);
    await accountSignIn(page, server, user);
    await enrolPasskey(page, 'Phone');

    // The account page's own sign-in: the password, then the passkey.
    await press(page, 'Sign out');
    await page.fill('input[name=username]', user.username);
    await page.fill('input[name=password]', user.password);
    await press(page, 'Sign in');
    assert.match(await page.locator('h1').innerText(), /Two-step verification/);
    await page.screenshot({ path: join(DOCS, 'passkey-second-factor.png'), fullPage: true });
    await press(page, 'Use a passkey');
    assert.equal(await page.locator('#account-username').innerText(), user.username);

    const claims = await codeFlowInBrowser(page, config, async () => {
      // Signed out of oidc-provider's session (a new authorization in this context): the login page.
      await page.fill('input[name=username]', user.username);
      await page.fill('input[name=password]', user.password);
      await press(page, 'Sign in');
      assert.match(await page.locator('h1').innerText(), /Two-step verification/);
      await press(page, 'Use a passkey');
    });
    assert.deepEqual(claims.amr, ['pwd', 'swk', 'user', 'mfa']);
    assert.equal(claims.acr, MFA);
    assert.deepEqual(problems, []);
  });

  /** The login page of a new authorization, then its passkey button; the error the page shows, with the status. */
  async function passwordlessRefused(page: Page): Promise<{ status: number; error: string }> {
    // prompt=login: the login page even where this browser's session is signed in already.
    await page.goto((await authorizationRequest(config, 'openid', { prompt: 'login' })).url.href);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && /\/interaction\/[^/]+$/.test(new URL(r.url()).pathname)),
      page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click(),
    ]);
    await page.waitForLoadState();
    return { status: response.status(), error: await page.getByRole('alert').innerText() };
  }

  /** A new tab and authenticator holding this credential (a copy, or one forged with another key). */
  async function authenticatorWith(credential: { credentialId: string; userHandle?: string | undefined; privateKey: string; signCount: number }) {
    const { page } = await newPage(browser);
    const { cdp, authenticatorId } = await addAuthenticator(page);
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...credential, isResidentCredential: true, rpId: 'localhost' } });
    return page;
  }
  const otherKey = () => keyPair().privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');

  test('refused: a cloned authenticator (its counter behind), another key under the same credential id, an unregistered passkey; wrong ones throttled', {
    timeout: 240_000,
  }, async () => {
    const user = createUser(server);
    const { page } = await newPage(browser);
    const { cdp, authenticatorId } = await addAuthenticator(page);
    await accountSignIn(page, server, user);
    await enrolPasskey(page, 'Key');
    const claims = await codeFlowInBrowser(page, config, () => press(page, 'Sign in with a passkey'));
    assert.equal(claims.sub, user.id);
    const [real] = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
    assert.ok(real && real.signCount >= 2, `the counter moved: ${real?.signCount}`);

    // A clone: the same private key, its counter behind the one last seen.
    const clone = await authenticatorWith({ credentialId: real.credentialId, userHandle: real.userHandle, privateKey: real.privateKey, signCount: 0 });
    const cloned = await passwordlessRefused(clone);
    assert.equal(cloned.status, 401);
    assert.match(cloned.error, /passkey was not accepted/);
    await server.outputMatching(/"reason":"counter_went_back".*"event":"passkey_failed"/);

    // Another authenticator with its own key under this credential id: the signature does not verify.
    const forged = await authenticatorWith({ credentialId: real.credentialId, userHandle: real.userHandle, privateKey: otherKey(), signCount: 1000 });
    for (let i = 0; i < 3; i++) assert.equal((await passwordlessRefused(forged)).status, 401);
    await server.outputMatching(/"reason":"invalid_assertion".*"event":"passkey_failed"/);
    const last = await passwordlessRefused(forged);
    assert.match(last.error, /Too many wrong passkey attempts/, 'the fifth wrong assertion starts the throttle');
    // Throttled like wrong codes (the same rule: 1 s, then doubling, from the fifth): counted and reported.
    await server.outputMatching(/"event":"second_factor_locked"/);

    // A discoverable passkey nobody registered here.
    const stranger = await authenticatorWith({
      credentialId: Buffer.from('not-registered-here').toString('base64'),
      userHandle: Buffer.from('nobody').toString('base64'),
      privateKey: otherKey(),
      signCount: 0,
    });
    const unknown = await passwordlessRefused(stranger);
    assert.equal(unknown.status, 401);
    assert.match(unknown.error, /not registered here/);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /tally_security_events_total\{event="passkey_failed"\} ([6-9]|\d\d)/);
  });

  test('remove a passkey (the password asked); DELETE /admin/users/{id}/factors removes passkeys too', { timeout: 120_000 }, async () => {
    const user = createUser(server);
    const { page } = await newPage(browser);
    await addAuthenticator(page);
    await accountSignIn(page, server, user);
    await enrolPasskey(page, 'First');
    await page.fill('input[id^=remove-]', 'not-the-password');
    await press(page, 'Remove this passkey');
    assert.match(await page.getByRole('alert').innerText(), /neither your password nor a code/);
    await page.fill('input[id^=remove-]', user.password);
    await press(page, 'Remove this passkey');
    assert.match(await page.locator('.notice').innerText(), /passkey is removed/);
    assert.match(await page.locator('#passkeys-status').innerText(), /^None/);
    await server.outputMatching(/"kind":"passkey".*"event":"factor_removed"|"event":"factor_removed".*"kind":"passkey"/);
    // Its credential stays in the authenticator, but Tally no longer knows it.
    await press(page, 'Sign out');
    const gone = await passwordlessRefused(page);
    assert.match(gone.error, /not registered here/);

    await accountSignIn(page, server, user);
    await enrolPasskey(page, 'Second');
    const count = async () =>
      (await query<{ n: number }>(server, `SELECT COUNT(*) AS n FROM "user_factors" WHERE "user_id" = ? AND "kind" = 'passkey'`, user.id))[0]!.n;
    assert.equal(Number(await count()), 1);
    assert.equal((await admin(server, 'DELETE', `/users/${user.id}/factors`)).status, 204);
    assert.equal(Number(await count()), 0);
    await page.goto(`${server.url}/account`);
    assert.match(await page.locator('#passkeys-status').innerText(), /^None/);
  });
});
