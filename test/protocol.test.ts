import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { basicAuthorization, parseBasicCredentials } from '../src/protocol/client-credentials.ts';
import { decodeFeedEvent, encodeFeedEvent } from '../src/protocol/revocations.ts';
import { root } from './helpers/server.ts';

// The wire contract between the server and its kits: defined once in src/protocol, imported by both.

/** Every relative import of the TypeScript files under `dir`, resolved to a path under src/. */
function relativeImports(dir: string): { file: string; target: string }[] {
  const src = join(root, 'src');
  const found: { file: string; target: string }[] = [];
  for (const name of readdirSync(join(src, dir), { recursive: true }).map(String)) {
    if (!name.endsWith('.ts')) continue;
    const file = join(src, dir, name);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(/\bfrom '(\.[^']+)'/g)) {
      found.push({ file: relative(src, file), target: relative(src, resolve(dirname(file), specifier!)) });
    }
  }
  return found;
}

test('the kits import nothing of the server: only each other and src/protocol', () => {
  const outside = relativeImports('kits').filter(({ target }) => !target.startsWith('kits/') && !target.startsWith('protocol/'));
  assert.deepEqual(outside, []);
});

test('src/protocol imports nothing of its own: kits and server alike can take it', () => {
  assert.deepEqual(relativeImports('protocol'), []);
});

test('Basic credentials: what the kits write, the server reads back, whatever characters the secret holds', () => {
  for (const [id, secret] of [
    ['app', 's3cret'],
    ['a b:c', 'p+q r%s:t~'],
    ['client', "!#$&'()*,/;=?@[]"],
  ] as const) {
    assert.deepEqual(parseBasicCredentials(basicAuthorization(id, secret)), { clientId: id, secret });
  }
});

test("Basic credentials read with oidc-provider's rules: anything it refuses reads as none", () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  for (const header of [
    undefined,
    'Bearer abc',
    `Basic  ${b64('a:b')}`, // two spaces
    'Basic !!!',
    `Basic ${b64('a:b').replace(/=+$/, '')}=`, // padding that does not fit the length
    `Basic ${b64('no-colon')}`,
    `Basic ${b64(':secret')}`, // empty client_id
    `Basic ${b64('app:')}`, // empty secret
    `Basic ${b64('app:%E0%A4%A')}`, // percent-encoding that does not decode
    `Basic ${b64('app:caf\u00e9')}`, // outside VSCHAR
  ]) {
    assert.equal(parseBasicCredentials(header), undefined, String(header));
  }
  assert.deepEqual(parseBasicCredentials(`basic ${b64('app:s')}`), { clientId: 'app', secret: 's' }, 'the scheme in any case');
});

test('a feed event round-trips; anything else on the channel is not a revocation', () => {
  const event = { id: 7, event: { type: 'scope', subject: 'alice', revoked_at: '2026-01-01T00:00:00.000Z' } } as const;
  assert.deepEqual(decodeFeedEvent(encodeFeedEvent(event)), event);
  assert.deepEqual(decodeFeedEvent('{"event":{"type":"token","jti_hash":"h","revoked_at":"x"}}'), { event: { type: 'token', jti_hash: 'h', revoked_at: 'x' } });
  for (const raw of ['not json', 'null', '{}', '{"id":1,"event":{"type":"other"}}', '[1]']) assert.equal(decodeFeedEvent(raw), undefined, raw);
});
