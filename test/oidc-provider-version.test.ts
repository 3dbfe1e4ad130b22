import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isSupported, SUPPORTED_RANGE } from '../src/oidc/internals/version.ts';
import { freePort, root, tallyArgs, tallyNode, tallyTree, testDatabase } from './helpers/server.ts';

// Tally relies on oidc-provider's internals (src/oidc/internals/) and must refuse to start on a version
// it was not written for. Here Tally is installed beside another oidc-provider: a directory holding its
// code (the tests' tree: src/ or its compiled copy), views and migrations, and a node_modules with
// every package of this checkout but oidc-provider, which is a copy of it whose package.json names
// another version. The same layout naming the version in package.json starts, so a refusal is the
// version check's doing.

const installs: string[] = [];
after(() => {
  for (const dir of installs) rmSync(dir, { recursive: true, force: true });
});

function installBeside(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-provider-version-'));
  installs.push(dir);
  cpSync(tallyTree.dir, join(dir, 'src'), { recursive: true });
  for (const file of ['package.json', 'tsconfig.json']) cpSync(join(root, file), join(dir, file));
  for (const folder of ['views', 'migrations']) symlinkSync(join(root, folder), join(dir, folder), 'dir');
  const modules = realpathSync(join(root, 'node_modules'));
  mkdirSync(join(dir, 'node_modules'));
  for (const entry of readdirSync(modules)) if (entry !== 'oidc-provider') symlinkSync(join(modules, entry), join(dir, 'node_modules', entry));
  const provider = join(dir, 'node_modules/oidc-provider');
  cpSync(join(modules, 'oidc-provider'), provider, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(provider, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(provider, 'package.json'), JSON.stringify({ ...manifest, version }, null, 2));
  return dir;
}

/** Runs Tally's `entry` with `args` in the installation; resolves when it exits or `until` sees its output. */
function run(dir: string, entry: 'main' | 'cli/index', args: string[], env: NodeJS.ProcessEnv, until?: (output: string) => boolean) {
  const child = spawn(tallyNode, [...tallyArgs(entry, join(dir, 'src')), ...args], {
    cwd: dir,
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  return new Promise<{ code: number | null; stdout: string; stderr: string; stop(): Promise<number | null> }>((done, fail) => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const stop = () => {
      child.kill('SIGTERM');
      return exited;
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`no answer within 60 s:\n${stdout}${stderr}`));
    }, 60_000);
    const check = () => {
      if (until?.(stdout)) {
        clearTimeout(timer);
        done({ code: null, stdout, stderr, stop });
      }
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      check();
    });
    child.stderr.on('data', (d) => (stderr += d));
    void exited.then((code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, stop });
    });
  });
}

test('the supported range: 9.13.3 and later 9.13 releases; nothing before, after, or pre-release', () => {
  assert.equal(SUPPORTED_RANGE, '>=9.13.3 <9.14.0');
  for (const version of ['9.13.3', '9.13.4', '9.13.12']) assert.ok(isSupported(version), version);
  for (const version of ['9.13.2', '9.14.0', '9.12.9', '10.0.0', '8.8.1', '9.13.4-beta.1', '9.13', 'latest', undefined])
    assert.ok(!isSupported(version), String(version));
});

test('the server beside oidc-provider 9.14.0 → refuses to start, naming both versions, before touching its database', { timeout: 120_000 }, async () => {
  const dir = installBeside('9.14.0');
  const dbFile = join(dir, 'tally.db');
  const result = await run(dir, 'main', [], { PORT: String(await freePort()), DATABASE_URL: `file:${dbFile}`, LOG_LEVEL: 'warn' });
  assert.equal(result.code, 1, result.stdout + result.stderr);
  // (On Node 20, oidc-provider's own line about the runtime may come first.)
  assert.deepEqual(
    result.stderr.split('\n').filter((line) => !line.startsWith('oidc-provider WARNING: Unsupported runtime')),
    [
      'tally: refusing to start: oidc-provider 9.14.0 is installed, but Tally relies on internals of oidc-provider >=9.13.3 <9.14.0 ' +
        '(src/oidc/internals/) and runs on no other version. Install the version package.json names (npm ci), ' +
        'or review src/oidc/internals/ against the new version and widen SUPPORTED_VERSIONS.',
      '',
    ],
    'one clear line, no stack trace',
  );
  assert.doesNotMatch(result.stdout, /serving the issuer/);
  assert.ok(!existsSync(dbFile), 'no database was created or migrated');
});

test('the CLI beside oidc-provider 9.13.2, registering a client (the command that loads oidc-provider) → refuses too', { timeout: 120_000 }, async () => {
  const dir = installBeside('9.13.2');
  const metadata = JSON.stringify({ client_name: 'Worker', grant_types: ['client_credentials'], response_types: [] });
  const result = await run(dir, 'cli/index', ['clients', 'create', '--json', metadata], { DATABASE_URL: `file:${join(dir, 'tally.db')}` });
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(
    result.stderr,
    /^tally: refusing to start: oidc-provider 9\.13\.2 is installed, but Tally relies on internals of oidc-provider >=9\.13\.3 <9\.14\.0/m,
  );
});

test('the same installation with the version package.json names → the server starts and serves', { timeout: 120_000 }, async () => {
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules/oidc-provider/package.json'), 'utf8')) as { version: string };
  const dir = installBeside(version);
  const db = await testDatabase();
  const port = await freePort();
  try {
    const server = await run(dir, 'main', [], { PORT: String(port), DATABASE_URL: db.databaseUrl, LOG_LEVEL: 'warn' }, (output) =>
      /serving the issuer/.test(output),
    );
    try {
      assert.equal(server.code, null, server.stdout + server.stderr);
      const discovery = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`);
      assert.equal(discovery.status, 200);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  } finally {
    db.cleanup();
  }
});
