import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { sign, verify } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { keyPair } from './helpers/key-pairs.ts';
import { root } from './helpers/server.ts';

// test/helpers/key-pairs.ts makes every key pair of the tests and the benchmark, so that none can
// deadlock Node 20 the way test/dpop-proofs.test.ts once did (its process hung before its first test,
// the runner cancelled the file after ten minutes: a red CI that no change had earned).

const PAIRS = 10_000;
const MAKE_AND_EXPORT = `
  import { keyPair } from './test/helpers/key-pairs.ts';
  for (let i = 0; i < ${PAIRS}; i++) {
    const { publicKey, privateKey } = keyPair();
    publicKey.export({ format: 'jwk' });
    privateKey.export({ format: 'der', type: 'pkcs8' });
  }
  console.log('made');
`;

test(`${PAIRS.toLocaleString('en')} key pairs made and exported in a row: the process finishes (Node 20 hung here with keys straight from generateKeyPairSync)`, () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', MAKE_AND_EXPORT], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(child.signal, null, `the child was killed (${child.signal}) after 120 s: deadlocked`);
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'made');
});

test('each kind signs and verifies with its pair, and its JWKs carry the members of its kind', () => {
  const data = Buffer.from('signed');
  const ec = keyPair();
  assert.deepEqual(Object.keys(ec.publicJwk).sort(), ['crv', 'kty', 'x', 'y']);
  assert.equal(ec.publicJwk.crv, 'P-256');
  assert.equal(typeof ec.privateJwk.d, 'string');
  const ecSignature = sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
  assert.equal(verify('sha256', data, { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, ecSignature), true);
  assert.equal(verify('sha256', data, { key: keyPair().publicKey, dsaEncoding: 'ieee-p1363' }, ecSignature), false);

  const ed = keyPair({ type: 'ed25519' });
  assert.deepEqual(Object.keys(ed.publicJwk).sort(), ['crv', 'kty', 'x']);
  assert.equal(verify(null, data, ed.publicKey, sign(null, data, ed.privateKey)), true);

  const rsa = keyPair({ type: 'rsa', modulusLength: 1024 });
  assert.deepEqual(Object.keys(rsa.publicJwk).sort(), ['e', 'kty', 'n']);
  assert.equal(rsa.publicKey.asymmetricKeyDetails?.modulusLength, 1024);
  assert.equal(verify('sha256', data, rsa.publicKey, sign('sha256', data, rsa.privateKey)), true);
});

test('no test or benchmark file makes a key pair with generateKeyPairSync but through the helper', () => {
  const offenders: string[] = [];
  for (const dir of ['test', 'bench']) {
    for (const entry of readdirSync(join(root, dir), { recursive: true })) {
      const file = join(dir, String(entry));
      // Build trees, work files and the like (bench/.build, bench/.work) are not sources.
      if (!/\.(ts|mjs|js)$/.test(file) || file.split('/').some((part) => part.startsWith('.'))) continue;
      if (file === join('test', 'helpers', 'key-pairs.ts')) continue;
      if (/generateKeyPairSync\s*\(/.test(readFileSync(join(root, file), 'utf8'))) offenders.push(file);
    }
  }
  assert.deepEqual(offenders, []);
});
