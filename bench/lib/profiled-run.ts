import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { RunResult } from './measure.ts';
import { summariseProfile, type ProfileSummary } from './profile.ts';
import { preparedScenario } from './scenarios.ts';
import { startTally } from './tally.ts';

export interface ProfiledRunOptions {
  /** Where the .cpuprofile goes (emptied first). */
  dir: string;
  warmupSeconds: number;
  seconds: number;
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Substrings of "area function" whose inclusive time the summary reports (summariseProfile). */
  markers?: string[];
  log?: (line: string) => void;
}

/**
 * One scenario on a fresh SQLite server under `node --cpu-prof`: a warm-up, then one measured run at 50
 * connections; the summary counts only that run's samples.
 */
export async function profiledRun(id: string, options: ProfiledRunOptions): Promise<{ result: RunResult; summary: ProfileSummary; file: string }> {
  const { dir, seconds } = options;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const server = await startTally({
    name: `profile-${id}`,
    nodeArgs: [...(options.nodeArgs ?? []), '--cpu-prof', `--cpu-prof-dir=${dir}`],
    ...(options.env ? { env: options.env } : {}),
  });
  let result: RunResult;
  let runEnded: number;
  try {
    const scenario = await preparedScenario(server, id, options.log);
    await scenario.run(50, options.warmupSeconds);
    result = await scenario.run(50, seconds);
    runEnded = performance.now();
  } finally {
    await server.stop();
  }
  const stopMs = performance.now() - runEnded;
  const name = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!name) throw new Error(`the profiled server (${id}) wrote no .cpuprofile`);
  const file = join(dir, name);
  return { result, summary: summariseProfile(file, options.markers ?? [], { fromEndMs: stopMs + seconds * 1000, toEndMs: stopMs }), file };
}
