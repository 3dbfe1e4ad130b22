import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { postgresPassServer } from './helpers/postgres.ts';
import { freePort, postgresOnly, root, runCli, tallyArgs, tallyNode, tempDatabase } from './helpers/server.ts';

// What an operator sees when the server cannot start where it is told to: one line naming the variable
// at fault (or saying that the database does not answer), exit code 2, no stack trace, no password.

/** Runs the server until it exits (each case here stops it at start). */
function startServerExpectingFailure(env: NodeJS.ProcessEnv) {
  return spawnSync(tallyNode, tallyArgs('main'), {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', PORT: '0', ...env, NODE_NO_WARNINGS: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Exit code 2 and one `tally:` line matching `message`, without a stack trace or `secret`. */
function assertRefused(result: { status: number | null; stdout: string; stderr: string }, message: RegExp, secret?: string) {
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, new RegExp(`^tally: ${message.source}`, 'm'));
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  if (secret) assert.ok(!`${result.stdout}${result.stderr}`.includes(secret), 'the password is not shown');
}

const temp = tempDatabase();
after(temp.cleanup);

test('a SQLite path that cannot be a file → DATABASE_URL named, by the server and the CLI', () => {
  const notADirectory = join(temp.dir, 'a-file');
  writeFileSync(notADirectory, '');
  const env = { DATABASE_URL: `file:${notADirectory}/tally.db` };
  const message = /Invalid environment variable DATABASE_URL="file:[^"]+\/a-file\/tally\.db": /;
  assertRefused(startServerExpectingFailure(env), message);
  assertRefused(runCli(env, ['migrate']), message);
  assertRefused(runCli(env, ['keys', 'rotate']), message);
});

test('PostgreSQL that does not answer → said so, with the URL but not its password', async () => {
  const env = { DATABASE_URL: `postgresql://tally:s3cret-Passw0rd@127.0.0.1:${await freePort()}/tally` };
  const message = /the database of DATABASE_URL="postgresql:\/\/tally:\*\*\*@127\.0\.0\.1:\d+\/tally" does not answer: .*ECONNREFUSED/;
  assertRefused(startServerExpectingFailure(env), message, 's3cret-Passw0rd');
  assertRefused(runCli(env, ['migrate']), message, 's3cret-Passw0rd');
});

test('a PostgreSQL database that does not exist → DATABASE_URL named', { skip: postgresOnly('needs a PostgreSQL server') }, async () => {
  const url = new URL(await postgresPassServer());
  url.pathname = '/no_such_database';
  const env = { DATABASE_URL: url.href };
  assertRefused(startServerExpectingFailure(env), /Invalid environment variable DATABASE_URL=".*\/no_such_database": .*does not exist/);
});

test('a port in use → PORT named; an address of another machine → HOST named', async () => {
  const taken = createServer();
  const port = await new Promise<number>((listening) => taken.listen(0, '127.0.0.1', () => listening((taken.address() as { port: number }).port)));
  after(() => taken.close());
  const env = { DATABASE_URL: `file:${temp.dbFile}` };
  assertRefused(
    startServerExpectingFailure({ ...env, PORT: String(port) }),
    new RegExp(`Invalid environment variable PORT="${port}": 127\\.0\\.0\\.1:${port} is already in use`),
  );
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
  assertRefused(
    startServerExpectingFailure({ ...env, HOST: '192.0.2.1' }),
    /Invalid environment variable HOST="192\.0\.2\.1": cannot listen on 192\.0\.2\.1:0 \(EADDRNOTAVAIL\)/,
  );
});
