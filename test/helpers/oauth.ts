import * as oidc from 'openid-client';
import { Browser, parseForms } from './browser.ts';
import { REDIRECT_URI, type RegisteredClient } from './fixtures.ts';
import type { TestServer } from './server.ts';

/** openid-client configured from discovery for one of the server's clients. */
export function discover(server: TestServer, client: RegisteredClient): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(server.url), client.client_id, undefined, client.client_secret ? oidc.ClientSecretBasic(client.client_secret) : oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** Signs in through the real login and consent pages (parsing and submitting their forms). */
export async function signInAndConsent(browser: Browser, startUrl: string, user: { username: string; password: string }) {
  let page = await browser.navigate(startUrl, {}, REDIRECT_URI);
  if (page.url.startsWith(REDIRECT_URI)) return new URL(page.url);
  const [login] = parseForms(page.html, page.url);
  if (!(login && Object.hasOwn(login.fields, 'username'))) throw new Error(`expected the login page, got ${page.response.status}: ${page.html.slice(0, 300)}`);
  page = await browser.submit(login, { username: user.username, password: user.password }, REDIRECT_URI);
  if (page.url.startsWith(REDIRECT_URI)) return new URL(page.url);
  const [allow] = parseForms(page.html, page.url);
  if (!allow) throw new Error(`expected the consent page, got ${page.response.status}: ${page.html.slice(0, 300)}`);
  page = await browser.submit(allow, {}, REDIRECT_URI);
  if (!page.url.startsWith(REDIRECT_URI)) throw new Error(`expected a redirect to the client, got ${page.response.status}: ${page.html.slice(0, 300)}`);
  return new URL(page.url);
}

/** An authorization request with PKCE (and prompt=consent when offline_access is asked for, as OpenID Connect requires). */
export async function authorizationRequest(config: oidc.Configuration, scope: string, extra: Record<string, string> = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...(scope.includes('offline_access') ? { prompt: 'consent' } : {}),
    ...extra,
  });
  return { url, verifier, state };
}

/** The authorization code flow with PKCE, end to end (`options.DPoP`: the token request carries a proof); returns the token response. */
export async function codeFlow(
  config: oidc.Configuration,
  user: { username: string; password: string },
  scope = 'openid profile email offline_access',
  extra: Record<string, string> = {},
  browser = new Browser(),
  options: oidc.AuthorizationCodeGrantOptions = {},
) {
  const { url, verifier, state } = await authorizationRequest(config, scope, extra);
  const callback = await signInAndConsent(browser, url.href, user);
  return oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, undefined, options);
}
