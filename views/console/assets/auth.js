// Signing in through Tally: the authorization code flow with PKCE (S256) for the public client
// `console`, asking for the admin API's resource so that the access token is for `$ISSUER/admin`
// with scope `admin`. The token lives in sessionStorage (this tab only, gone when it closes); when it
// expires the console signs in again (no refresh token is asked for).

export const issuer = document.querySelector('meta[name="tally-issuer"]').content;
export const CLIENT_ID = 'console';
const redirectUri = `${issuer}/console/callback`;
const SESSION = 'tally-console-session';
const PENDING = 'tally-console-pending';
/** Seconds before expiry at which a token counts as expired (a request must not race it). */
const EXPIRY_MARGIN = 30;

let discovery;
async function metadata() {
  discovery ??= fetch(`${issuer}/.well-known/openid-configuration`).then((r) => {
    if (!r.ok) throw new Error(`discovery answered ${r.status}`);
    return r.json();
  });
  return discovery;
}

const base64url = (bytes) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const random = (n) => base64url(crypto.getRandomValues(new Uint8Array(n)));

/**
 * The ID token's claims, checked against this sign-in: issued by this issuer to the console, with the
 * nonce sent with it (OpenID Connect Core 3.1.3.7; the token came straight from the token endpoint,
 * so its signature needs no check here). An ID token from another sign-in is refused.
 */
function checkedIdToken(idToken, nonce) {
  let claims;
  try {
    const payload = idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
  } catch {
    throw new Error('the token endpoint answered without a readable ID token; sign in again');
  }
  const audiences = [claims.aud].flat();
  if (claims.iss !== issuer || !audiences.includes(CLIENT_ID) || claims.nonce !== nonce)
    throw new Error('the ID token does not belong to this sign-in; sign in again');
  return idToken;
}

/** Leaves for the authorization endpoint; `returnTo`: the console page (#/...) to come back to. */
export async function signIn(returnTo = location.hash) {
  const verifier = random(32);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = random(16);
  const nonce = random(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, returnTo }));
  const url = new URL((await metadata()).authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    scope: 'openid admin',
    redirect_uri: redirectUri,
    resource: `${issuer}/admin`,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
  }).toString();
  location.assign(url.href);
  return new Promise(() => {}); // the page is leaving
}

/** At /console/callback: checks the state, redeems the code; resolves with the session or throws with the reason. */
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', `./${pending?.returnTo ?? ''}`);
  if (params.get('error')) throw Object.assign(new Error(params.get('error_description') ?? params.get('error')), { code: params.get('error') });
  if (!pending || !params.get('state') || params.get('state') !== pending.state)
    throw new Error('the sign-in answer does not match a sign-in started here; sign in again');
  const response = await fetch((await metadata()).token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: pending.verifier,
      client_id: CLIENT_ID,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(answer.error_description ?? `the token endpoint answered ${response.status}`), { code: answer.error });
  const session = {
    access_token: answer.access_token,
    id_token: checkedIdToken(answer.id_token ?? '', pending.nonce),
    scope: answer.scope ?? '',
    expires_at: Date.now() + (answer.expires_in ?? 0) * 1000,
  };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

export function storedSession() {
  return JSON.parse(sessionStorage.getItem(SESSION) ?? 'null');
}

/** The session while its token is good; undefined once it expired (or none). */
export function currentSession() {
  const session = storedSession();
  return session && session.expires_at - EXPIRY_MARGIN * 1000 > Date.now() ? session : undefined;
}

export const hasAdminScope = (session) => (session?.scope ?? '').split(' ').includes('admin');

/** The bearer token for the admin API; signs in again (leaving the page) when there is none. */
export async function accessToken() {
  const session = currentSession();
  if (session) return session.access_token;
  return signIn();
}

export function forgetSession() {
  sessionStorage.removeItem(SESSION);
}

/** RP-initiated logout: ends the Tally session too, then comes back to the console. */
export async function signOut() {
  const session = storedSession();
  forgetSession();
  const url = new URL((await metadata()).end_session_endpoint);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    post_logout_redirect_uri: `${issuer}/console/`,
    ...(session?.id_token ? { id_token_hint: session.id_token } : {}),
  }).toString();
  location.assign(url.href);
}
