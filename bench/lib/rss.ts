import { readdirSync, readFileSync } from 'node:fs';

/** VmRSS of a process in MiB, or undefined when it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, all threads) a process has used so far, in ms; undefined when it is gone. */
export function cpuMs(pid: number): number | undefined {
  return cpuMsIn(`/proc/${pid}/stat`);
}

/**
 * CPU time of a process's main thread alone (the task whose id is the pid), in ms; undefined when it
 * is gone. Against the wall clock it is how busy the event loop was: its share of what the process used
 * leaves out V8's background threads, libuv's pool and worker threads.
 */
export function mainThreadCpuMs(pid: number): number | undefined {
  return cpuMsIn(`/proc/${pid}/task/${pid}/stat`);
}

/**
 * CPU time used so far by every process whose command is `postgres` (a local cluster's server and its
 * backends; backends that exited meanwhile are not counted), in ms: the database's side of a run.
 */
export function postgresCpuMs(): number {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
    } catch {
      continue;
    }
    total += cpuMs(Number(pid)) ?? 0;
  }
  return total;
}

function cpuMsIn(statFile: string): number | undefined {
  try {
    const stat = readFileSync(statFile, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3; utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

/**
 * Samples a process's RSS every `intervalMs` (200 ms) in the background. `mark()` starts a new
 * window; `peak()` is the highest sample since the last mark (and the current value, so a window
 * shorter than one interval still has one sample); `overall()` the highest since the start.
 */
export class RssSampler {
  private windowPeak = 0;
  private windowCpu = 0;
  private overallPeak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample() {
    const value = rssMiB(this.pid);
    if (value === undefined) return;
    if (value > this.windowPeak) this.windowPeak = value;
    if (value > this.overallPeak) this.overallPeak = value;
  }

  mark() {
    this.windowPeak = 0;
    this.windowCpu = cpuMs(this.pid) ?? 0;
    this.sample();
  }

  /** CPU ms the process used since the last mark. */
  cpuSinceMark(): number {
    return (cpuMs(this.pid) ?? this.windowCpu) - this.windowCpu;
  }

  peak(): number {
    this.sample();
    return this.windowPeak;
  }

  overall(): number {
    this.sample();
    return this.overallPeak;
  }

  stop() {
    clearInterval(this.timer);
  }
}
