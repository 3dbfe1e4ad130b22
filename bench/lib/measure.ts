import autocannon from 'autocannon';
import { performance } from 'node:perf_hooks';
import { request } from './http.ts';
import type { RssSampler } from './rss.ts';
import { max, median, min, percentile } from './stats.ts';

/** One timed run at one concurrency. Latencies in ms. */
export interface RunResult {
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  /** Non-2xx answers, transport errors and timeouts. */
  failed: number;
  durationS: number;
  /** Peak RSS of the server during the run (MiB), when a sampler was given. */
  rss?: number;
  /** Server CPU time (all threads) per successful operation, ms. */
  cpuPerOp?: number;
  /** The share of the run's wall time the server's main thread was on a CPU (0–1); steady-load runs only. */
  mainThreadBusy?: number;
}

export interface LevelSummary {
  connections: number;
  runs: RunResult[];
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p50: number;
  p99: number;
  p99Min: number;
  p99Max: number;
  rss?: number;
  cpuPerOp?: number;
  failed: number;
}

/**
 * One run at `connections` (or workers) for `seconds`: as fast as they can, or, with `rate`, at that
 * fixed offered rate overall (operations per second), for latency at a steady load.
 */
export type RunOnce = (connections: number, seconds: number, rate?: number) => Promise<RunResult>;

export interface MeasureOptions {
  levels: number[];
  runs: number;
  seconds: number;
  warmupSeconds: number;
  sampler?: RssSampler;
  log?: (line: string) => void;
  label?: string;
}

/** Warm-up at the highest concurrency, then `runs` rounds over every level (interleaved), summarised. */
export async function measure(run: RunOnce, options: MeasureOptions): Promise<LevelSummary[]> {
  const top = Math.max(...options.levels);
  if (options.warmupSeconds > 0) await run(top, options.warmupSeconds);
  const results = new Map<number, RunResult[]>(options.levels.map((c) => [c, []]));
  for (let round = 0; round < options.runs; round++) {
    for (const connections of options.levels) {
      options.sampler?.mark();
      const result = await run(connections, options.seconds);
      if (options.sampler) {
        result.rss = options.sampler.peak();
        if (result.ok) result.cpuPerOp = options.sampler.cpuSinceMark() / result.ok;
      }
      results.get(connections)!.push(result);
      options.log?.(
        `  ${options.label ?? ''} c=${connections} run ${round + 1}: ${result.rps.toFixed(0)}/s p50 ${result.p50.toFixed(2)} ms p99 ${result.p99.toFixed(2)} ms` +
          `${result.cpuPerOp !== undefined ? ` cpu ${result.cpuPerOp.toFixed(2)} ms/op` : ''}${result.rss ? ` rss ${result.rss.toFixed(0)} MiB` : ''}${result.failed ? ` FAILED ${result.failed}` : ''}`,
      );
    }
  }
  return options.levels.map((connections) => summarise(connections, results.get(connections)!));
}

export function summarise(connections: number, runs: RunResult[]): LevelSummary {
  const rss = runs.map((r) => r.rss).filter((v): v is number => v !== undefined);
  const cpu = runs.map((r) => r.cpuPerOp).filter((v): v is number => v !== undefined);
  return {
    connections,
    runs,
    rps: median(runs.map((r) => r.rps)),
    rpsMin: min(runs.map((r) => r.rps)),
    rpsMax: max(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    p99Min: min(runs.map((r) => r.p99)),
    p99Max: max(runs.map((r) => r.p99)),
    ...(rss.length ? { rss: max(rss) } : {}),
    ...(cpu.length ? { cpuPerOp: median(cpu) } : {}),
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
  };
}

export interface CannonTarget {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Builds each request's body (e.g. a random token); autocannon calls it per request. */
  bodyFor?: () => string;
  /** Headers added to each request (e.g. a fresh DPoP proof); autocannon calls it per request. */
  headersFor?: () => Record<string, string>;
  /** Runs before each run, given its length in seconds (e.g. signing that run's DPoP proofs ahead). */
  beforeRun?: (seconds: number) => void;
}

/**
 * One autocannon run (programmatic API). With a rate, autocannon's `overallRate`: each connection may
 * send its share of the rate per second, then waits for the next second. Latencies are recorded as
 * measured: autocannon's coordinated-omission correction assumes a 1 ms interval at any rate, so it is off.
 */
export function cannonRun(target: CannonTarget): RunOnce & { paced: RunOnce } {
  return Object.assign(cannonRunOnce(target), { paced: pacedRun(target) });
}

/**
 * The same requests from a paced loop of keep-alive clients (`loopRun` with a rate: each connection
 * sends one request every `connections / rate` seconds, their starts spread evenly): an even offered
 * load where autocannon's `overallRate` sends each second's share in a burst. Latencies to the µs.
 */
function pacedRun(target: CannonTarget): RunOnce {
  const method = target.method ?? 'GET';
  const run = loopRun(async () => {
    const body = target.bodyFor ? target.bodyFor() : target.body;
    const headers = { ...target.headers, ...target.headersFor?.() };
    const answer = await request(target.url, { method, headers, ...(body !== undefined ? { body } : {}) });
    if (answer.status < 200 || answer.status >= 300) throw new Error(`${method} ${new URL(target.url).pathname} answered ${answer.status}`);
  });
  return (connections, seconds, rate) => {
    target.beforeRun?.(seconds);
    return run(connections, seconds, rate);
  };
}

function cannonRunOnce(target: CannonTarget): RunOnce {
  return async (connections, seconds, rate) => {
    target.beforeRun?.(seconds);
    const url = new URL(target.url);
    const options: Record<string, unknown> = {
      url: url.origin,
      connections,
      duration: seconds,
      timeout: 10,
      ...(rate ? { overallRate: Math.max(1, Math.round(rate)), ignoreCoordinatedOmission: true } : {}),
      method: target.method ?? 'GET',
      headers: target.headers ?? {},
      ...(target.body !== undefined ? { body: target.body } : {}),
      requests: [
        {
          method: target.method ?? 'GET',
          path: url.pathname + url.search,
          ...(target.bodyFor || target.headersFor
            ? {
                setupRequest: (req: Record<string, unknown>) => {
                  if (target.bodyFor) req.body = target.bodyFor();
                  if (target.headersFor) req.headers = { ...(req.headers as Record<string, string>), ...target.headersFor() };
                  return req;
                },
              }
            : {}),
        },
      ],
    };
    const result = (await autocannon(options)) as unknown as {
      duration: number;
      latency: { p50: number; p99: number };
      '2xx': number;
      non2xx: number;
      errors: number;
      timeouts: number;
    };
    const ok = result['2xx'];
    return {
      rps: ok / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      ok,
      failed: result.non2xx + result.errors + result.timeouts,
      durationS: result.duration,
    };
  };
}

/**
 * A custom loop: `workers` concurrent async workers, each calling `step(worker)` back to back for
 * `seconds`. Each completed step is one operation; its latency is the step's duration. With a rate,
 * a paced loop: each worker starts a step every `workers / rate` seconds (the workers' starts spread
 * evenly over that interval), or at once when its previous step ran late.
 */
export function loopRun(step: (worker: number) => Promise<void>, recover?: (worker: number, error: unknown) => Promise<void>): RunOnce {
  return async (workers, seconds, rate) => {
    const latencies: number[] = [];
    let failed = 0;
    const started = performance.now();
    const end = started + seconds * 1000;
    let lastError: unknown;
    await Promise.all(
      Array.from({ length: workers }, async (_, worker) => {
        const interval = rate ? (workers * 1000) / rate : 0;
        let next = started + (interval * worker) / workers;
        while (performance.now() < end) {
          if (interval) {
            // The run ends at `end`: a step due after it is not waited for (that would stretch the run).
            if (next >= end) break;
            const wait = next - performance.now();
            next += interval;
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          }
          const t0 = performance.now();
          try {
            await step(worker);
            latencies.push(performance.now() - t0);
          } catch (error) {
            failed++;
            lastError = error;
            if (recover) await recover(worker, error).catch(() => undefined);
            else await new Promise((r) => setTimeout(r, 10));
          }
        }
      }),
    );
    const durationS = (performance.now() - started) / 1000;
    if (failed && latencies.length === 0) throw new Error(`every operation failed; last error: ${(lastError as Error)?.message ?? lastError}`);
    return { rps: latencies.length / durationS, p50: percentile(latencies, 50), p99: percentile(latencies, 99), ok: latencies.length, failed, durationS };
  };
}
