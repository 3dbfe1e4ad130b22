import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../src/config/logger.ts';
import { logEscapedErrors } from '../src/oidc/escaped-errors.ts';

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

test('an error escaping oidc-provider → logged as an error with event server_error; a client gone mid-request → debug only', () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => done(void lines.push(String(chunk))) });
  const log = logEscapedErrors(createLogger('info', sink));
  log(new TypeError('persist can only be called on previously persisted Sessions'));
  log(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  const written = lines.map((text) => JSON.parse(text));
  assert.equal(written.length, 1, 'the aborted request is below info');
  assert.equal(written[0].level, 50);
  assert.equal(written[0].event, 'server_error');
});
