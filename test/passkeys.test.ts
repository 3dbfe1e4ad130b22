import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import type { BrowserContext, CDPSession, Browser as PwBrowser, Page } from 'playwright-core';
import { ADMIN_KEY, admin } from './helpers/admin.ts';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.ts';
import { databaseContents } from './helpers/db.ts';
import { createUser, createWebClient, REDIRECT_URI } from './helpers/fixtures.ts';
import { authorizationRequest, discover } from './helpers/oauth.ts';
import { root, startServer, type TestServer } from './helpers/server.ts';

const DOCS = join(root, 'docs');
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
    assert.match(server.output(), /"kind":"passkey".*"event":"factor_enrolled"|"event":"factor_enrolled".*"kind":"passkey"/);

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
});
