import type { BaselineServer } from './baselines.ts';
import type { RunOnce, RunResult } from './measure.ts';
import type { ScenarioResult, SteadyResult } from './report.ts';
import { mainThreadCpuMs, type RssSampler } from './rss.ts';
import type { Scenario } from './scenarios.ts';

/** A run with how busy `pid`'s main thread was during it (RunResult.mainThreadBusy). */
async function withMainThreadBusy(pid: number | undefined, run: () => Promise<RunResult>): Promise<RunResult> {
  const before = pid === undefined ? undefined : mainThreadCpuMs(pid);
  const result = await run();
  const after = pid === undefined ? undefined : mainThreadCpuMs(pid);
  if (before !== undefined && after !== undefined && result.durationS > 0) result.mainThreadBusy = (after - before) / (result.durationS * 1000);
  return result;
}

/**
 * Latency at a steady load (issue 20): one run of the scenario at a fixed offered rate of half its own
 * peak (the best median throughput of its levels), at its highest concurrency, then Express hello at
 * the same offered rate with the same load generator right after (so both see the same machine): for
 * every scenario an evenly paced loop of keep-alive clients (`paced`, the default), or with
 * BENCH_STEADY=autocannon autocannon's `overallRate` for autocannon scenarios.
 */
export async function steadyRun(
  s: Scenario,
  result: ScenarioResult,
  twin: BaselineServer,
  options: { seconds: number; sampler?: RssSampler; log: (line: string) => void; paced?: boolean },
): Promise<SteadyResult | undefined> {
  if (result.levels.length === 0) return undefined;
  const peak = Math.max(...result.levels.map((l) => l.rps));
  const connections = Math.max(...result.levels.map((l) => l.connections));
  const rate = peak / 2;
  if (!(rate >= 1)) return undefined;
  // Paced (the default): autocannon scenarios send the same requests from an evenly paced loop.
  const pacedScenario = options.paced ? (s.run as { paced?: RunOnce }).paced : undefined;
  const scenarioRun = pacedScenario ?? s.run;
  const loop = s.loop === true || pacedScenario !== undefined;
  options.sampler?.mark();
  const scenario = await withMainThreadBusy(options.sampler?.pid, () => scenarioRun(connections, options.seconds, rate));
  if (options.sampler && scenario.ok) scenario.cpuPerOp = options.sampler.cpuSinceMark() / scenario.ok;
  const expressRun = loop ? twin.run.paced : twin.run;
  const express = await withMainThreadBusy(twin.child.pid, () => expressRun(connections, options.seconds, rate));
  const busy = (r: RunResult) => (r.mainThreadBusy === undefined ? '' : `, main thread ${(r.mainThreadBusy * 100).toFixed(0)} % busy`);
  const show = (name: string, r: RunResult) =>
    `${name} ${r.rps.toFixed(0)}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms${busy(r)}${r.failed ? ` FAILED ${r.failed}` : ''}`;
  options.log(`  ${s.id} steady at ${rate.toFixed(0)}/s over ${connections}: ${show('scenario', scenario)}; ${show('Express hello', express)}`);
  return { rate, connections, generator: loop ? 'paced loop' : 'autocannon overallRate', scenario, express };
}
