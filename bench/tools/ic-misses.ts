/**
 * The inline caches that miss on (nearly) every request of some scenarios: each is a runtime call, and
 * often a new hidden class (src/lib/object-shapes.ts). The compiled server runs under V8's IC log; the
 * scenarios run once to warm up, then again, and only the second runs' log is read. Each site that
 * missed at least `threshold` times is listed with the function it is in.
 *
 *   node --import tsx bench/tools/ic-misses.ts cc-jwt,introspect-hot-jwt [seconds] [threshold]
 *
 * Needs bench/.build (run `npm run bench` once, or any BENCH_ONLY run). Sites that miss once per
 * connection (the sockets' streams) show up with counts near the connections' number (50 a run).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { investigationScenarios } from '../lib/scenarios.ts';
import { isBuilt, startTally } from '../lib/tally.ts';
import { icLogArgs, icMiss } from '../../test/helpers/ic-log.ts';

const [idsArg, secondsArg, thresholdArg] = process.argv.slice(2);
if (!idsArg) throw new Error('usage: ic-misses.ts <scenario,scenario…> [seconds] [threshold]');
if (!isBuilt()) throw new Error('bench/.build is missing: run the benchmark once first');
const seconds = Number(secondsArg ?? 3);
const threshold = Number(thresholdArg ?? 1000);

const dir = mkdtempSync(join(tmpdir(), 'tally-ic-'));
const log = join(dir, 'v8.log');
const server = await startTally({ name: 'ic-misses', nodeArgs: icLogArgs(log) });
let measuredFrom = 0;
try {
  const all = await investigationScenarios(server);
  const scenarios = idsArg.split(',').map((id) => all.find((s) => s.id === id) ?? raise(`no scenario ${id}`));
  for (const s of scenarios) await s.prepare?.();
  for (const s of scenarios) await s.run(50, seconds);
  measuredFrom = statSync(log).size;
  for (const s of scenarios) console.log(`${s.id}: ${(await s.run(50, seconds)).ok} requests measured`);
} finally {
  await server.stop(); // V8 writes the rest of its log on exit
}

// code-creation,<type>,<kind>,<time>,<address>,<size>,<name>…: which function a miss's pc is in.
const code: { start: number; end: number; name: string }[] = [];
const misses = new Map<string, { count: number; pc: number }>();
let offset = 0;
for (const line of readFileSync(log, 'latin1').split('\n')) {
  const at = offset;
  offset += line.length + 1;
  const field = line.split(',');
  if (field[0] === 'code-creation') {
    const start = Number.parseInt(field[4]!, 16);
    code.push({ start, end: start + Number(field[5]), name: field[6]! });
    continue;
  }
  const miss = at >= measuredFrom ? icMiss(line) : undefined;
  if (!miss) continue;
  const site = `${miss.site} (${miss.states})`;
  const seen = misses.get(site) ?? { count: 0, pc: miss.pc };
  seen.count += 1;
  misses.set(site, seen);
}
const functionAt = (pc: number) => code.findLast((c) => c.start <= pc && pc < c.end)?.name.replace(/file:\/\/\/\S*?node_modules\//, '') ?? '?';
const rows = [...misses].filter(([, m]) => m.count >= threshold).sort((a, b) => b[1].count - a[1].count);
console.log(rows.length ? `\n| misses | site | in |\n|---:|---|---|` : `\nno site missed ${threshold} times or more`);
for (const [site, m] of rows) console.log(`| ${m.count} | ${site} | ${functionAt(m.pc)} |`);
rmSync(dir, { recursive: true, force: true });

function raise(message: string): never {
  throw new Error(message);
}
