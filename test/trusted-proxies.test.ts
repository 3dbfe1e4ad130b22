import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from './helpers/server.ts';

// URLs come from ISSUER alone; X-Forwarded-* is believed only from TRUST_PROXY peers; cookies are
// Secure whenever the issuer is https, even when the last hop to Tally is plain http.

let behindTls: TestServer;
before(async () => {
  behindTls = await startServer({ env: { ISSUER: 'https://id.example.test', TRUST_PROXY: 'loopback' } });
});
after(() => behindTls.stop());

const get = (server: TestServer, path: string, headers: Record<string, string> = {}) =>
  fetch(`http://127.0.0.1:${server.env.PORT}${path}`, { headers, redirect: 'manual' });

test('discovery names the issuer whatever Host and X-Forwarded-Host say, even from a trusted proxy, and is not cacheable by a shared cache', async () => {
  const answer = await get(behindTls, '/.well-known/openid-configuration', { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' });
  assert.equal(answer.status, 200);
  const text = await answer.text();
  assert.doesNotMatch(text, /evil\.example|http:\/\/id\.example/);
  const discovery = JSON.parse(text);
  assert.equal(discovery.issuer, 'https://id.example.test');
  assert.equal(discovery.token_endpoint, 'https://id.example.test/token');
});

test('cookies are Secure under an https issuer reached over http', async () => {
  const answer = await get(behindTls, '/device');
  assert.equal(answer.status, 200);
  const cookies = answer.headers.getSetCookie();
  assert.ok(cookies.length > 0, 'the device page sets its session cookie');
  for (const cookie of cookies) assert.match(cookie, /;\s*secure/i, cookie);
});

test('under an http issuer cookies are not marked Secure (a browser would drop them)', async () => {
  const plain = await startServer();
  try {
    const cookies = (await get(plain, '/device', { 'x-forwarded-proto': 'https' })).headers.getSetCookie();
    assert.ok(cookies.length > 0);
    for (const cookie of cookies) assert.doesNotMatch(cookie, /;\s*secure/i, cookie);
  } finally {
    await plain.stop();
  }
});

test('TRUST_PROXY that is not an address, range or loopback stops the server, naming the variable', async () => {
  await assert.rejects(startServer({ env: { TRUST_PROXY: 'loopback,not-an-ip' } }), /TRUST_PROXY/);
});
