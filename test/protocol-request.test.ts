import assert from 'node:assert/strict';
import { parse } from 'node:querystring';
import { test } from 'node:test';
import { unmarkJwt } from '../src/oidc/jwt-mark.ts';
import { parseProtocolRequest, pathOf, readsForm } from '../src/oidc/protocol-request.ts';

// The one reading of a protocol request's form (src/oidc/protocol-request.ts): what the direct answers
// read, and the body oidc-provider is handed, with Tally's JWTs marked at introspection and revocation.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln';
const request = (path: string, body: string, headers: Record<string, string> = FORM) => parseProtocolRequest(path, headers, Buffer.from(body));

test('the token, introspection and revocation endpoints are read, by POST only, whatever the query', () => {
  for (const path of ['/token', '/token/introspection', '/token/revocation']) assert.ok(readsForm('POST', path), path);
  assert.ok(!readsForm('GET', '/token'));
  assert.ok(!readsForm('POST', '/me'));
  assert.equal(pathOf('/token/revocation?x=1'), '/token/revocation');
  assert.equal(pathOf('/token/revocation#part'), '/token/revocation');
});

test('a JWT to introspect or revoke → marked in the body handed on, which reads as the same form otherwise', () => {
  for (const path of ['/token/introspection', '/token/revocation']) {
    const body = `token=${JWT}&token_type_hint=access_token&extra=a+b%20c&extra=d`;
    const read = request(path, body);
    assert.notEqual(read.form!.token, JWT);
    assert.equal(unmarkJwt(read.form!.token), JWT);
    assert.deepEqual({ ...parse(read.body.toString()) }, { ...read.form }, 'oidc-provider reads the form Tally read');
    assert.deepEqual({ ...parse(read.body.toString()), token: JWT }, { ...parse(body) }, 'only the token differs');
  }
});

test('no mark: at the token endpoint, for a reference token, a repeated or empty token, or a body that is no form', () => {
  const untouched = (path: string, body: string, headers?: Record<string, string>) => {
    const read = request(path, body, headers);
    assert.equal(read.body.toString(), body, `${path} ${body}`);
    return read;
  };
  untouched('/token', `grant_type=urn:x&subject_token=${JWT}&token=${JWT}`);
  untouched('/token/introspection', `token=${'a'.repeat(43)}`);
  untouched('/token/introspection', `token=${JWT}&token=${JWT}`);
  untouched('/token/introspection', 'token=');
  assert.equal(untouched('/token/revocation', JSON.stringify({ token: JWT }), { 'content-type': 'application/json' }).form, undefined);
});

test('the form as oidc-provider reads it: its first 1,000 segments, repeated names as arrays; UTF-8 alone counts as plain', () => {
  const beyond = request('/token/introspection', `${'&'.repeat(1000)}token=${JWT}`);
  assert.equal(beyond.form!.token, undefined, 'past what oidc-provider reads: no token, so no mark');
  assert.deepEqual(request('/token', 'scope=a&scope=b').form!.scope, ['a', 'b']);
  assert.equal(request('/token', 'a=1', { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }).utf8Form, true);
  const latin1 = request('/token', 'a=1', { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' });
  assert.equal(latin1.utf8Form, false);
  assert.equal(latin1.form, undefined, 'not read at the token endpoint: no direct answer takes it, no JWT to mark');
  const marked = request('/token/revocation', `token=${JWT}`, { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' });
  assert.equal(unmarkJwt(marked.form!.token), JWT, 'marked whatever the charset, as oidc-provider reads the form anyway');
});
