import { generate } from 'otplib';
import * as oidc from 'openid-client';
import { Browser, parseForms, type Form } from './browser.ts';
import { REDIRECT_URI } from './fixtures.ts';
import { authorizationRequest } from './oauth.ts';
import type { TestServer } from './server.ts';

/** The TOTP code `steps` periods from now (each code is accepted once: a second use in a test takes the next step). */
export function totpCode(secret: string, steps = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 });
}

export const formWith = (html: string, url: string, field: string): Form => {
  const form = parseForms(html, url).find((f) => Object.hasOwn(f.fields, field));
  if (!form) throw new Error(`no form with ${field} at ${url}: ${html.slice(0, 400)}`);
  return form;
};
export const formTo = (html: string, url: string, path: string): Form => {
  const form = parseForms(html, url).find((f) => new URL(f.action).pathname === path);
  if (!form) throw new Error(`no form posting to ${path} at ${url}: ${html.slice(0, 400)}`);
  return form;
};

/** The secret shown on the enrolment page (read from the page, as a person types it into an app). */
export function secretOnPage(html: string): string {
  const secret = /id="totp-secret">([A-Z2-7]+)</.exec(html)?.[1];
  if (!secret) throw new Error(`no secret on the page: ${html.slice(0, 400)}`);
  return secret;
}

/** Signs in at $ISSUER/account with the password (and `code` when asked for one); the account page. */
export async function accountSignIn(browser: Browser, server: TestServer, user: { username: string; password: string }, code?: () => Promise<string>) {
  let page = await browser.navigate(`${server.url}/account`);
  page = await browser.submit(formWith(page.html, page.url, 'password'), { username: user.username, password: user.password });
  if (page.html.includes('name="code"')) {
    if (!code) throw new Error('the account page asked for a code');
    page = await browser.submit(formWith(page.html, page.url, 'code'), { code: await code() });
  }
  if (!page.html.includes('id="account-username"')) throw new Error(`expected the account page, got ${page.response.status}: ${page.html.slice(0, 400)}`);
  return page;
}

/** Enrols an authenticator through the account page; its secret. */
export async function enrolTotp(server: TestServer, user: { username: string; password: string }, browser = new Browser()): Promise<string> {
  const page = await accountSignIn(browser, server, user);
  const offer = await browser.submit(formTo(page.html, page.url, '/account/totp'));
  const secret = secretOnPage(offer.html);
  const done = await browser.submit(formWith(offer.html, offer.url, 'code'), { code: await totpCode(secret) });
  if (!done.html.includes('Your authenticator is on')) throw new Error(`enrolment not confirmed: ${done.html.slice(0, 400)}`);
  return secret;
}

/** What a sign-in step shows: the next page, or the callback at the client. */
export type Step = { url: string; response: Response; html: string };

/**
 * The code flow up to the first page after the password: the second-factor prompt, the enrolment page,
 * the consent page, or (when nothing is asked) the callback.
 */
export async function startCodeFlow(
  config: oidc.Configuration,
  user: { username: string; password: string },
  extra: Record<string, string> = {},
  browser = new Browser(),
) {
  const request = await authorizationRequest(config, 'openid profile', extra);
  let page: Step = await browser.navigate(request.url.href, {}, REDIRECT_URI);
  if (page.html.includes('name="password"'))
    page = await browser.submit(formWith(page.html, page.url, 'password'), { username: user.username, password: user.password }, REDIRECT_URI);
  return { request, page, browser };
}

/** Allows the consent page (when shown) and redeems the code; the token response. */
export async function finishCodeFlow(
  config: oidc.Configuration,
  flow: { request: Awaited<ReturnType<typeof authorizationRequest>>; browser: Browser },
  page: Step,
) {
  if (!page.url.startsWith(REDIRECT_URI)) {
    const [allow] = parseForms(page.html, page.url);
    if (!allow || !page.html.includes('Allow')) throw new Error(`expected the consent page, got ${page.response.status}: ${page.html.slice(0, 400)}`);
    page = await flow.browser.submit(allow, {}, REDIRECT_URI);
  }
  if (!page.url.startsWith(REDIRECT_URI)) throw new Error(`expected the callback, got ${page.response.status}: ${page.html.slice(0, 400)}`);
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: flow.request.verifier, expectedState: flow.request.state });
}

/** New recovery codes, from the account page of a browser signed in there; as shown (XXXXX-XXXXX). */
export async function newRecoveryCodes(browser: Browser, server: TestServer): Promise<string[]> {
  const page = await browser.navigate(`${server.url}/account`);
  const shown = await browser.submit(formTo(page.html, page.url, '/account/recovery-codes'));
  return [...shown.html.matchAll(/<kbd>([A-Z0-9-]+)<\/kbd>/g)].map((m) => m[1]!);
}
