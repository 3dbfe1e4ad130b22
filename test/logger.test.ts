import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../src/config/logger.ts';

test('logs: credentials are redacted, an error keeps the code that says why it failed', () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => done(void lines.push(String(chunk))) });
  const error = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  createLogger('info', sink).warn(
    { err: error, params: { code: 'an-authorization-code' }, body: { code: 'x', client_secret: 's', password: 'p' }, req: { query: { code: 'y' } } },
    'failed',
  );
  const [line] = lines.map((text) => JSON.parse(text));
  assert.equal(line.err.code, 'ECONNREFUSED');
  assert.equal(line.params.code, '[redacted]');
  assert.equal(line.body.code, '[redacted]');
  assert.equal(line.req.query.code, '[redacted]');
  assert.equal(line.body.client_secret, '[redacted]');
  assert.equal(line.body.password, '[redacted]');
});
