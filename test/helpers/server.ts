import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../..');

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
  dbFile: string;
  env: NodeJS.ProcessEnv;
  output: () => string;
  stop(): Promise<number | null>;
  /** Runs the CLI on the same database; throws with its output on a non-zero exit. */
  cli(args: string[], input?: string): string;
}

/** A temporary directory holding one SQLite database; removed by `cleanup`. */
export function tempDatabase(): { dir: string; dbFile: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tally-test-'));
  return { dir, dbFile: join(dir, 'tally.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function runCli(env: NodeJS.ProcessEnv, args: string[], input?: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    input: input ?? '',
    encoding: 'utf8',
  });
}

/** Starts `src/main.ts` in its own process on a free port and waits until it answers. */
export async function startServer(options: { dir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<TestServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tally-test-'));
  const dbFile = join(dir, 'tally.db');
  const env: NodeJS.ProcessEnv = { DATABASE_URL: `file:${dbFile}`, PORT: String(await freePort()), LOG_LEVEL: 'warn', ...options.env };
  const port = Number(env.PORT);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts')], {
    cwd: root,
    env: { ...process.env, ...env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const url = env.ISSUER ?? `http://localhost:${port}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    dir,
    dbFile,
    env,
    output: () => log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    cli(args, input) {
      const result = runCli(env, args, input);
      if (result.status !== 0) throw new Error(`tally ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
      return result.stdout;
    },
  };
}
