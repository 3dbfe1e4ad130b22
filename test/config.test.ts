import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/index.ts';
import { root, tallyArgs, tallyNode } from './helpers/server.ts';

describe('configuration from the environment', () => {
  test('defaults → the contract values', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.issuer, 'http://localhost:3000');
    assert.equal(config.databaseUrl, 'file:./data/tally.db');
    assert.equal(config.tokenMode, 'reference');
    assert.equal(config.accessTokenTtl, 3600);
    assert.equal(config.refreshTokenTtl, 1209600);
    assert.equal(config.defaultAudience, 'http://localhost:3000');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.dpopNonces, false);
  });

  test('DPOP_NONCES=true → DPoP proofs need a server nonce', () => {
    assert.equal(loadConfig({ DPOP_NONCES: 'true' }).dpopNonces, true);
    assert.equal(loadConfig({ DPOP_NONCES: 'false' }).dpopNonces, false);
  });

  test('ISSUER follows PORT unless given', () => {
    assert.equal(loadConfig({ PORT: '4000' }).issuer, 'http://localhost:4000');
    assert.equal(loadConfig({ PORT: '4000', ISSUER: 'https://id.example.com/' }).issuer, 'https://id.example.com');
  });

  for (const [name, value] of [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['ISSUER', 'not a url'],
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'http://x'],
    ['ADMIN_API_KEY', 'too-short'],
    ['TOKEN_MODE', 'opaque'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['REFRESH_TOKEN_TTL', '-5'],
    ['LOG_LEVEL', 'loud'],
    ['DPOP_NONCES', 'yes'],
  ] as const) {
    test(`${name}=${value} → ConfigError naming ${name}`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => error instanceof ConfigError && error.message.includes(name),
      );
    });
  }

  test('PORT=abc → the server process stops with a non-zero exit and a message naming PORT', () => {
    const result = spawnSync(tallyNode, tallyArgs('main'), {
      cwd: root,
      env: { ...process.env, PORT: 'abc', NODE_NO_WARNINGS: '1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /PORT/);
  });
});
