import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { renderPage } from '../src/http/views.ts';

// A page is rendered on every step of a sign-in; once its template is cached, rendering it touches no
// file (ejs stats a relative include at every render, cached or not: the views include by absolute path).

const LOGIN = { uid: 'u1', csrf: 'c', clientName: 'App <1>', error: 'Wrong username or password.', action: '/interaction/u1', username: 'ann', nonce: 'n' };

test('the login page (with its passkey form) and the consent page: rendered with their partials, and no file touched once cached', async (t) => {
  const render = async () => [
    await renderPage('login', { ...LOGIN, passkeyChallenge: '/interaction/u1/passkey-challenge' }),
    await renderPage('consent', {
      uid: 'u1',
      csrf: 'c',
      clientName: 'App',
      error: undefined,
      scopes: [{ name: 'openid', description: 'Know who you are', warning: false }],
    }),
  ];
  const [login, consent] = await render();
  assert.match(login!, /<link rel="stylesheet"[^>]*>/, 'the head partial');
  assert.match(login!, /App &lt;1&gt;/);
  assert.match(login!, /name="_csrf" value="c"/);
  assert.match(login!, /<script src="\/assets\/passkeys.js" nonce="n">/, 'the passkey partial and its scripts partial');
  assert.match(consent!, /name="decision" value="deny"/);
  assert.match(consent!, /<\/html>/, 'the foot partial');

  const stats = t.mock.method(fs, 'existsSync');
  const statSync = t.mock.method(fs, 'statSync');
  const read = t.mock.method(fs, 'readFileSync');
  assert.deepEqual(await render(), [login, consent]);
  assert.equal(stats.mock.callCount() + statSync.mock.callCount() + read.mock.callCount(), 0, 'no file looked up or read');
});
