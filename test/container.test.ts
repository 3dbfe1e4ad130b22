import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { argumentsOf, dockerfile, environmentOf, stagesOf, type Stage } from './helpers/dockerfile.ts';
import { freePort, root, sqliteOnly, tallyTree } from './helpers/server.ts';

// No container runtime here: the Dockerfile's runtime stage is laid out in a temporary directory
// (its COPY lines, its ENV, its WORKDIR as that directory) and its CMD and HEALTHCHECK are run there.

const stages = stagesOf(dockerfile);
const build = stages.find((s) => s.name === 'build')!;
const runtime = stages.at(-1)!;
const one = (stage: Stage, op: string) => {
  const found = argumentsOf(stage, op);
  assert.equal(found.length, 1, `one ${op} in the ${stage.name} stage`);
  return found[0]!;
};

const work = mkdtempSync(join(tmpdir(), 'tally-image-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('the Dockerfile: two stages on Node 22 slim, a non-root runtime, a health check on /readyz', () => {
  assert.deepEqual(
    stages.map((s) => s.name),
    ['build', 'runtime'],
  );
  assert.match(dockerfile, /^FROM node:22-[\w-]*slim AS build$/m);
  assert.match(dockerfile, /^FROM node:22-[\w-]*slim AS runtime$/m);
  assert.equal(one(runtime, 'USER'), 'node');
  assert.match(one(runtime, 'HEALTHCHECK'), /CMD \[.*\/readyz/);
  // Everything the build stage copies from the context exists, and is all `npm ci` + `npm run build` read.
  for (const copy of argumentsOf(build, 'COPY')) {
    const sources = copy.split(/\s+/).slice(0, -1);
    for (const source of sources) assert.ok(existsSync(join(root, source)), `the build stage copies ${source}, which exists`);
  }
  const copied = argumentsOf(build, 'COPY').flatMap((c) => c.split(/\s+/).slice(0, -1));
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts', 'prisma', 'src'])
    assert.ok(copied.includes(needed), `the build stage copies ${needed}`);
});

test("the runtime stage's files, environment and CMD start a server that migrates, passes the HEALTHCHECK and stops on SIGTERM", {
  skip: sqliteOnly("the image's default database is SQLite"),
  timeout: 180_000,
}, async () => {
  const app = join(work, 'app');
  mkdirSync(app);
  const inApp = (path: string) => path.replace(/^\/app(\/|$)/, `${app}$1`);

  // COPY: from the build stage (what `npm run build` makes: the compiled server) or from the context.
  for (const copy of argumentsOf(runtime, 'COPY')) {
    const from = /--from=(\S+)/.exec(copy)?.[1];
    const [source, target] = copy.replace(/--\S+\s+/g, '').split(/\s+/) as [string, string];
    const destination = join(app, target);
    if (from === 'build') {
      const built = source.replace(/^\/app\//, '');
      if (built === 'dist' && tallyTree.compiled) {
        // The run's compiled copy of src/ (scripts/run-tests.mjs): the same tsc output but for declarations and maps.
        cpSync(tallyTree.dir, destination, { recursive: true });
      } else if (built === 'dist') {
        const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', destination], {
          encoding: 'utf8',
        });
        assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
      } else if (built === 'node_modules') {
        symlinkSync(join(root, 'node_modules'), destination, 'dir');
      } else {
        cpSync(join(root, built), destination, { recursive: true });
      }
    } else {
      cpSync(join(root, source), destination, { recursive: true });
    }
  }
  // RUN mkdir -p /app/data (the volume).
  for (const run of argumentsOf(runtime, 'RUN')) for (const [, dir] of run.matchAll(/mkdir -p (\S+)/g)) mkdirSync(inApp(dir!), { recursive: true });

  // ENV, with /app as the temporary directory, on a free loopback port.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const [key, value] of Object.entries(environmentOf(runtime))) env[key] = value.replace(/(file:)?\/app\//, (_m, file = '') => `${file}${app}/`);
  assert.equal(env.NODE_ENV, 'production');
  assert.equal(env.DATABASE_URL, `file:${app}/data/tally.db`);
  env.PORT = String(await freePort());
  env.HOST = '127.0.0.1';
  // NODE_ENV=production (the image's) refuses to start without a root key from the operator.
  env.TALLY_SECRET_KEY = Buffer.alloc(32, 7).toString('base64url');
  env.NODE_NO_WARNINGS = '1';

  const [command, ...args] = JSON.parse(one(runtime, 'CMD')) as string[];
  const [, checkJson] = /CMD (\[.*\])$/.exec(one(runtime, 'HEALTHCHECK'))!;
  const [checkCommand, ...checkArgs] = JSON.parse(checkJson!) as string[];
  assert.equal(checkCommand, 'node');
  const health = () => spawnSync(process.execPath, checkArgs, { cwd: app, env, encoding: 'utf8' }).status;
  assert.equal(command, 'node');
  const server = spawn(process.execPath, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stdout.on('data', (d) => (output += d));
  server.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((done) => server.once('exit', (code) => done(code)));
  try {
    // HEALTHCHECK: its own command, within its start period (30 s), passes once the server is ready.
    let status = health();
    for (const deadline = Date.now() + 30_000; status !== 0 && Date.now() < deadline && server.exitCode === null; ) {
      await new Promise((done) => setTimeout(done, 250));
      status = health();
    }
    assert.equal(status, 0, `the health check passes:\n${output}`);

    // Migrated at start: the server answers from its database.
    const discovery = await fetch(`http://127.0.0.1:${env.PORT}/.well-known/openid-configuration`);
    assert.equal(discovery.status, 200);
    assert.ok(existsSync(join(app, 'data/tally.db')), 'the database lives in the volume');
    assert.match(output, /migrations applied/);
    // Pages render from the copied views/: an authorization request from an unknown client.
    const page = await fetch(`http://127.0.0.1:${env.PORT}/auth?client_id=nobody&response_type=code&scope=openid`);
    assert.equal(page.status, 400);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await page.text(), /Something went wrong/);
  } finally {
    server.kill('SIGTERM');
  }
  assert.equal(await exited, 0, `SIGTERM ends the server cleanly:\n${output}`);
  // The health check fails once the server is gone (the orchestrator then restarts it).
  assert.equal(health(), 1);
});
