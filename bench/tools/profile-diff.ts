/**
 * Where two scenarios' CPU differs, function by function, in µs of the server's main thread per
 * request: each scenario on a fresh compiled server under `node --cpu-prof` (a warm-up, then one
 * measured run at 50 connections; only that run's samples count), self time per function divided by
 * the run's successful requests. For questions like "what does DPoP add to client credentials?".
 *
 *   node --import tsx bench/tools/profile-diff.ts cc-reference cc-dpop-reference [seconds]
 *
 * Needs bench/.build (run `npm run bench` once, or any BENCH_ONLY run). The main thread only: V8's
 * background threads and libuv's pool are not in a .cpuprofile.
 */
import { join } from 'node:path';
import { profiledRun } from '../lib/profiled-run.ts';
import { isBuilt, root } from '../lib/tally.ts';

const [first, second, secondsArg] = process.argv.slice(2);
if (!first || !second) throw new Error('usage: profile-diff.ts <scenario> <scenario> [seconds]');
if (!isBuilt()) throw new Error('bench/.build is missing: run the benchmark once first');
const seconds = Number(secondsArg ?? 5);

async function profile(id: string): Promise<{ ok: number; busyUsPerOp: number; perOp: Map<string, number> }> {
  const { result, summary } = await profiledRun(id, {
    dir: join(root, 'bench/.profiles', id),
    warmupSeconds: 2,
    seconds,
    nodeArgs: ['--cpu-prof-interval=250'],
  });
  const busyUs = summary.busyMs * 1000;
  return { ok: result.ok, busyUsPerOp: busyUs / result.ok, perOp: new Map(summary.byFunction.map(([name, share]) => [name, (share * busyUs) / result.ok])) };
}

const a = await profile(first);
const b = await profile(second);
console.log(`${first}: ${a.ok} requests, ${a.busyUsPerOp.toFixed(1)} µs of main thread per request`);
console.log(`${second}: ${b.ok} requests, ${b.busyUsPerOp.toFixed(1)} µs of main thread per request`);
const names = new Set([...a.perOp.keys(), ...b.perOp.keys()]);
const rows = [...names]
  .map((name) => ({ name, a: a.perOp.get(name) ?? 0, b: b.perOp.get(name) ?? 0 }))
  .sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a));
console.log(`\n| function (self time) | ${first} µs/req | ${second} µs/req | difference |\n|---|---:|---:|---:|`);
for (const row of rows.slice(0, 40)) console.log(`| \`${row.name}\` | ${row.a.toFixed(1)} | ${row.b.toFixed(1)} | ${(row.b - row.a).toFixed(1)} |`);
process.exit(0);
