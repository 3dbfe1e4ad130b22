import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from './stats.ts';

export { freePort } from '../../test/helpers/server.ts';

/** A child process the benchmark started; stopped by its own pid only. */
export interface Child {
  pid: number;
  process: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<Child>();

export function spawnChild(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Child {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer) => {
    log += d;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const handle: Child = {
    pid: child.pid!,
    process: child,
    output: () => log,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        running.delete(handle);
        return code;
      }
      running.delete(handle);
      return child.exitCode;
    },
  };
  running.add(handle);
  return handle;
}

/** Kills (by pid) every child still running: on exit or on an error. */
export function killAllChildren() {
  for (const child of running) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  }
  running.clear();
}

/** Polls `url` until it answers 2xx, or fails with the child's output. */
export async function waitUntilServing(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null) throw new Error(`process exited with ${child.process.exitCode}:\n${child.output()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${timeoutMs} ms:\n${child.output()}`);
    await sleep(100);
  }
}
