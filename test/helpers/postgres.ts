import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './server.ts';

export interface TestPostgres {
  /** postgresql://postgres@127.0.0.1:<port>/<db> */
  url(db: string): string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server (`pg_ctl stop -m fast`) and removes its data directory. */
  stop(): Promise<void>;
}

/** The newest /usr/lib/postgresql/<version>/bin holding initdb, pg_ctl and postgres; else undefined. */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(a) - Number(b));
  for (const version of versions.reverse()) {
    const bin = join(base, version, 'bin');
    if (['initdb', 'pg_ctl', 'postgres'].every((tool) => existsSync(join(bin, tool)))) return bin;
  }
  return undefined;
}

/** Why PostgreSQL tests are skipped, or undefined when the binaries are available. */
export function postgresSkipReason(): string | undefined {
  return postgresBinDir() ? undefined : 'PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql (as .ci/run does)';
}

/** PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user. */
function asPostgres(): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
}

function run(command: string[], timeoutMs = 60_000): SpawnSyncReturns<string> {
  return spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

let databases = 0;

/** Creates a fresh, empty database on the server `serverUrl` points to (any database of it) and returns its URL. */
export async function createDatabaseOn(serverUrl: string): Promise<string> {
  const name = `tally_${process.pid}_${++databases}`;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.href;
}

let passServer: Promise<string> | undefined;

/**
 * The PostgreSQL server of the suite's PostgreSQL pass: TALLY_TEST_POSTGRES_URL, which `npm test`
 * sets to the one server it starts for the whole pass; when a test file is run on its own with
 * TALLY_TEST_DATABASE=postgres and no URL, a server started for this process (stopped on exit).
 */
export function postgresPassServer(): Promise<string> {
  passServer ??= (async () => {
    const given = process.env.TALLY_TEST_POSTGRES_URL;
    if (given) return given;
    const reason = postgresSkipReason();
    if (reason) throw new Error(`TALLY_TEST_DATABASE=postgres, but ${reason}`);
    return (await startPostgres())!.url('postgres');
  })();
  return passServer;
}

/**
 * Runs a throwaway PostgreSQL (initdb into a temporary directory, durability off) on a free loopback
 * port. Resolves to undefined, with the reason printed, when the binaries are absent, so that the caller
 * can skip. The server is stopped when this process exits, and a watchdog stops it even when this
 * process is killed outright.
 */
export async function startPostgres(): Promise<TestPostgres | undefined> {
  const bin = postgresBinDir();
  if (!bin) {
    console.log(`# ${postgresSkipReason()}`);
    return undefined;
  }
  const sudo = asPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'tally-pg-'));
  const data = join(dir, 'data');
  if (sudo.length) chownSync(dir, Number(run(['id', '-u', 'postgres']).stdout.trim()), Number(run(['id', '-g', 'postgres']).stdout.trim()));

  const initdb = run([...sudo, join(bin, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
  if (initdb.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${initdb.status ?? initdb.error?.message}):\n${initdb.stdout}${initdb.stderr}`);
  }

  const pgCtl = (...args: string[]) => [...sudo, join(bin, 'pg_ctl'), '-D', data, ...args];
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  // If this process dies without running its exit handlers (SIGKILL, a test-runner timeout), stdin of
  // the watchdog closes and it stops the server and removes the directory.
  const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const watchdog = spawn(
    'sh',
    ['-c', `cat >/dev/null; ${pgCtl('stop', '-m', 'immediate').map(shellQuote).join(' ')} >/dev/null 2>&1; rm -rf ${shellQuote(dir)}`],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    },
  );
  watchdog.unref();
  (watchdog.stdin as unknown as Socket).unref();

  const port = await freePort();
  // On exit (a failed assertion, an uncaught error) nothing asynchronous runs any more: stop synchronously.
  const onExit = () => {
    run(pgCtl('stop', '-m', 'immediate', '-w'), 30_000);
    cleanup();
  };
  process.on('exit', onExit);

  const options = [
    `-c listen_addresses=127.0.0.1`,
    `-p ${port}`,
    `-k ${dir}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ');
  const started = run(pgCtl('-o', options, '-l', join(dir, 'postgres.log'), '-w', '-t', '30', 'start'));
  if (started.status !== 0) {
    const log = existsSync(join(dir, 'postgres.log')) ? readFileSync(join(dir, 'postgres.log'), 'utf8') : '';
    onExit();
    process.removeListener('exit', onExit);
    watchdog.stdin?.end();
    throw new Error(`pg_ctl start failed (${started.status ?? started.error?.message}):\n${started.stdout}${started.stderr}${log}`);
  }

  const url = (db: string) => `postgresql://postgres@127.0.0.1:${port}/${db}`;
  let stopped = false;
  return {
    url,
    createDatabase: () => createDatabaseOn(url('postgres')),
    async stop() {
      if (stopped) return;
      stopped = true;
      const [command, ...args] = pgCtl('stop', '-m', 'fast', '-w');
      await new Promise<void>((done) => {
        const child = spawn(command!, args, { stdio: 'ignore' });
        child.once('exit', () => done());
        child.once('error', () => done());
      });
      cleanup();
      process.removeListener('exit', onExit);
      watchdog.stdin?.end();
    },
  };
}
