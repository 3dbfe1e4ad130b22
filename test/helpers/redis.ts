import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './server.ts';

export interface TestRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  output: () => string;
  /** Stops the server (its data is gone: nothing is saved). */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty), after stopping it if it still runs. */
  restart(): Promise<void>;
}

/** /usr/bin/redis-server, else the first redis-server on PATH, else undefined. */
export function redisServerBinary(): string | undefined {
  const candidates = [
    '/usr/bin/redis-server',
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, 'redis-server')),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why Redis tests are skipped, or undefined when redis-server is available. */
export function redisSkipReason(): string | undefined {
  return redisServerBinary() ? undefined : 'redis-server not installed: apt-get install redis-server (as .ci/run does)';
}

async function waitForPing(port: number, child: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}):\n${log()}`);
    const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return;
    } catch {
      // not accepting connections yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer within ${timeoutMs} ms:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs a throwaway redis-server (in the foreground, as a child of this process, nothing persisted) on a
 * free port and waits until it answers PING. Resolves to undefined, with the reason printed, when
 * redis-server is not installed, so that the caller can `t.skip(...)`.
 */
export async function startRedis(): Promise<TestRedis | undefined> {
  const binary = redisServerBinary();
  if (!binary) {
    console.log(`# ${redisSkipReason()}`);
    return undefined;
  }
  const port = await freePort();
  let log = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // A child dies with the test: killed on exit, even when the test forgets stop().
  const killOnExit = () => child?.kill('SIGKILL');

  async function launch() {
    if (!process.listeners('exit').includes(killOnExit)) process.on('exit', killOnExit);
    const started = spawn(binary!, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout!.on('data', (d) => (log += d));
    started.stderr!.on('data', (d) => (log += d));
    exited = new Promise((done) => started.once('exit', () => done()));
    await waitForPing(port, started, () => log);
  }

  async function stop() {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    output: () => log,
    async stop() {
      await stop();
      process.removeListener('exit', killOnExit);
    },
    async restart() {
      await stop();
      await launch();
    },
  };
}
