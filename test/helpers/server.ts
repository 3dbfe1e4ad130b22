import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dialectOf, type Dialect } from '../../src/storage/database.ts';
import { createDatabaseOn, postgresPassServer } from './postgres.ts';
import { tlsFetch } from './tls.ts';

export { dialectOf, type Dialect } from '../../src/storage/database.ts';

/** How long a test server may take to exit after SIGTERM: its 10 s for requests in flight, 5 s for the rest, and slack. */
const STOP_WITHIN_MS = 30_000;

export const root = resolve(import.meta.dirname, '../..');

/**
 * The tree the tests run Tally's processes from: the run's compiled copy of src/ when there is one
 * (scripts/run-tests.mjs compiles it once and names it in TALLY_TEST_BUILD: a server then starts on
 * half the CPU that tsx's loader takes), else src/ itself through tsx (a test file run on its own).
 */
export const tallyTree: { compiled: boolean; dir: string; extension: string; nodeArgs: string[] } = process.env.TALLY_TEST_BUILD
  ? { compiled: true, dir: resolve(process.env.TALLY_TEST_BUILD), extension: '.js', nodeArgs: [] }
  : { compiled: false, dir: join(root, 'src'), extension: '.ts', nodeArgs: ['--import', 'tsx'] };

/**
 * The node binary of Tally's processes: this one's, or TALLY_TEST_NODE's (scripts/run-tests.mjs runs
 * some suites once more with the servers on the Docker image's Node 22).
 */
export const tallyNode = process.env.TALLY_TEST_NODE || process.execPath;

/** node's arguments that run Tally's `entry` (`main`, `cli/index`) from `tallyTree`, or from a copy of it in `dir`. */
export const tallyArgs = (entry: 'main' | 'cli/index', dir = tallyTree.dir): string[] => [...tallyTree.nodeArgs, join(dir, `${entry}${tallyTree.extension}`)];

/**
 * The database the suite runs on. `npm test` runs it twice: on SQLite, then with
 * TALLY_TEST_DATABASE=postgres on PostgreSQL (see scripts/run-tests.mjs).
 */
export const testDialect: Dialect = /^postgres/i.test(process.env.TALLY_TEST_DATABASE ?? '') ? 'postgresql' : 'sqlite';
export const onPostgres = testDialect === 'postgresql';

/** `{ skip: sqliteOnly('why') }`: a test about SQLite itself, skipped (with the reason) in the PostgreSQL pass. */
export const sqliteOnly = (why: string): string | undefined => (onPostgres ? `SQLite-specific: ${why}` : undefined);
/** `{ skip: postgresOnly('why') }`: a test about PostgreSQL itself, skipped (with the reason) in the SQLite pass. */
export const postgresOnly = (why: string): string | undefined => (onPostgres ? undefined : `PostgreSQL-specific: ${why}`);

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

export interface TestServer {
  url: string;
  dir: string;
  /** The SQLite file the server uses when `dialect` is sqlite (nothing is there on PostgreSQL). */
  dbFile: string;
  /** The server's DATABASE_URL: the SQLite file, or its own PostgreSQL database. */
  databaseUrl: string;
  dialect: Dialect;
  env: NodeJS.ProcessEnv;
  /** The server process's id. */
  pid: number;
  output: () => string;
  /**
   * The output once it matches `pattern` (a log line the server wrote before answering may reach this
   * process after the answer: they travel on different pipes); fails after `ms`.
   */
  outputMatching(pattern: RegExp, ms?: number): Promise<string>;
  /** The output once `done` holds of it, or after `ms` as it then is (for the same reason). */
  outputUntil(done: (output: string) => boolean, ms?: number): Promise<string>;
  stop(): Promise<number | null>;
  /** Runs the CLI on the same database; throws with its output on a non-zero exit. */
  cli(args: string[], input?: string): string;
}

/** A temporary directory holding one SQLite database; removed by `cleanup`. */
export function tempDatabase(): { dir: string; dbFile: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tally-test-'));
  return { dir, dbFile: join(dir, 'tally.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestDatabase {
  dialect: Dialect;
  databaseUrl: string;
  dir: string;
  dbFile: string;
  cleanup(): void;
}

/** A fresh, empty database of the suite's dialect: a SQLite file in a temporary directory, or a new PostgreSQL database. */
export async function testDatabase(): Promise<TestDatabase> {
  const temp = tempDatabase();
  const databaseUrl = onPostgres ? await createDatabaseOn(await postgresPassServer()) : `file:${temp.dbFile}`;
  return { ...temp, dialect: testDialect, databaseUrl };
}

export function runCli(env: NodeJS.ProcessEnv, args: string[], input?: string) {
  return spawnSync(tallyNode, [...tallyArgs('cli/index'), ...args], {
    cwd: root,
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    input: input ?? '',
    encoding: 'utf8',
  });
}

/**
 * Starts Tally's server (`tallyArgs('main')`) in its own process on a free port and waits until it answers. Its database,
 * unless `env.DATABASE_URL` names one: `<dir>/tally.db`, or in the PostgreSQL pass a new database.
 */
export async function startServer(options: { dir?: string; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Promise<TestServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tally-test-'));
  const dbFile = join(dir, 'tally.db');
  const databaseUrl = options.env?.DATABASE_URL ?? (onPostgres ? await createDatabaseOn(await postgresPassServer()) : `file:${dbFile}`);
  const env: NodeJS.ProcessEnv = { PORT: String(await freePort()), LOG_LEVEL: 'warn', ...options.env, DATABASE_URL: databaseUrl };
  const port = Number(env.PORT);
  const child: ChildProcess = spawn(tallyNode, [...(options.nodeArgs ?? []), ...tallyArgs('main')], {
    cwd: root,
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const https = Boolean(env.TLS_CERT_FILE);
  const url = env.ISSUER ?? `${https ? 'https' : 'http'}://localhost:${port}`;
  const probe = https ? tlsFetch({ insecure: true }) : fetch;

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log}`);
    try {
      if ((await probe(`${https ? 'https' : 'http'}://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const outputUntil = async (done: (output: string) => boolean, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!done(log) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return log;
  };
  return {
    url,
    dir,
    dbFile,
    databaseUrl,
    dialect: dialectOf(databaseUrl),
    env,
    pid: child.pid!,
    output: () => log,
    outputUntil,
    async outputMatching(pattern, ms = 5000) {
      assert.match(await outputUntil((output) => pattern.test(output), ms), pattern);
      return log;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      // The server bounds its own shutdown (src/main.ts); past this, a test fails saying so, never hangs.
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, STOP_WITHIN_MS);
      const code = await exited;
      clearTimeout(timer);
      if (killed) throw new Error(`the server did not exit within ${STOP_WITHIN_MS / 1000} s of SIGTERM; its output:\n${log.slice(-4000)}`);
      return code;
    },
    cli(args, input) {
      const result = runCli(env, args, input);
      if (result.status !== 0) throw new Error(`tally ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
      return result.stdout;
    },
  };
}

/** One sample of the server's /metrics, e.g. `tally_security_events_total{event="malformed_http"}` (0 while absent). */
export async function metricSample(server: { url: string }, sample: string, fetcher: typeof fetch = fetch): Promise<number> {
  const text = await (await fetcher(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** How many times the server has counted a security event (`tally_security_events_total`). */
export const securityEventCount = (server: { url: string }, event: string, fetcher?: typeof fetch): Promise<number> =>
  metricSample(server, `tally_security_events_total{event="${event}"}`, fetcher);

/** Introspection requests the server has answered so far, whatever their status (from /metrics). */
export async function introspectionRequests(server: { url: string }): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return [...text.matchAll(/^tally_http_requests_total\{route="introspection",status="\d+"\} (\d+)/gm)].reduce((sum, [, n]) => sum + Number(n), 0);
}
