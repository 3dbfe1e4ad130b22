/**
 * Two compiled trees on one scenario in interleaved rounds (bench/lib/paired.ts): what a change buys,
 * measured with both sides on the same minutes of a shared machine. Each side is its own server on a
 * fresh 20,000-entry SQLite ledger, which has answered one request through oidc-provider first.
 *
 *   cp -r bench/.build bench/.build-before      # the build before the change (then rebuild)
 *   node --import tsx bench/tools/ab-builds.ts introspect-hot-reference bench/.build-before/dist bench/.build/dist [rounds] [seconds]
 *
 * With AB_POSTGRES=1 each side runs on a database of its own in one throw-away local PostgreSQL
 * cluster instead (bench/lib/postgres.ts), without Redis, as the full run's PostgreSQL pass does; each
 * round also prints the cluster's CPU per request on either side (the sides run one after the other).
 *
 * Prints each round's server CPU per request on both sides and the median ratio (before ÷ after: above
 * 1 means the second tree is cheaper).
 */
import { resolve } from 'node:path';
import pg from 'pg';
import { pairedRounds, type PairSide } from '../lib/paired.ts';
import { postgresBin, startLocalPostgres } from '../lib/postgres.ts';
import { postgresCpuMs, RssSampler } from '../lib/rss.ts';
import { preparedScenario } from '../lib/scenarios.ts';
import { startTally, type TallyServer } from '../lib/tally.ts';

const [scenarioId, distA, distB, roundsArg, secondsArg] = process.argv.slice(2);
if (!scenarioId || !distA || !distB) throw new Error('usage: ab-builds.ts <scenario> <distA> <distB> [rounds] [seconds]');
const id = scenarioId;

const bin = process.env.AB_POSTGRES === '1' ? postgresBin() : undefined;
if (process.env.AB_POSTGRES === '1' && !bin) throw new Error('AB_POSTGRES=1, but no PostgreSQL binaries under /usr/lib/postgresql');
const postgres = bin ? await startLocalPostgres(bin) : undefined;

/** A database of its own for one side, in the local cluster (none: SQLite). */
async function databaseFor(name: string): Promise<string | undefined> {
  if (!postgres) return undefined;
  const database = name.replace(/\W/g, '_');
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${database}`);
  } finally {
    await client.end();
  }
  return postgres.url.replace(/\/tally$/, `/${database}`);
}

/** The database's CPU per request of each run at the pairs' concurrency, by side (PostgreSQL only). */
const databaseCpu = new Map<string, number[]>();
function countingDatabaseCpu(side: PairSide): PairSide {
  if (!postgres) return side;
  const costs: number[] = [];
  databaseCpu.set(side.id, costs);
  return {
    ...side,
    run: async (connections, seconds, rate) => {
      const before = postgresCpuMs();
      const result = await side.run(connections, seconds, rate);
      if (result.ok > 0) costs.push((postgresCpuMs() - before) / result.ok);
      return result;
    },
  };
}

async function side(name: string, dist: string): Promise<{ server: TallyServer; side: PairSide }> {
  const databaseUrl = await databaseFor(name);
  const server = await startTally({ name, dist: resolve(dist), ...(databaseUrl ? { databaseUrl } : {}) });
  const scenario = await preparedScenario(server, id);
  // As every server in service has: one request answered by oidc-provider (a refused refresh), which
  // may leave process-wide state behind (the promise hooks of its Provider.ctx, before they were turned off).
  const refused = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=refresh_token&refresh_token=none&client_id=none',
  });
  if (refused.status !== 401) throw new Error(`${name}: the refused refresh answered ${refused.status}`);
  return { server, side: countingDatabaseCpu({ id: `${id} (${dist})`, run: scenario.run, sampler: new RssSampler(server.child.pid) }) };
}

const a = await side('ab-a', distA);
const b = await side('ab-b', distB);
try {
  const result = await pairedRounds(a.side, b.side, { rounds: Number(roundsArg ?? 6), seconds: Number(secondsArg ?? 3), connections: 50, warmupSeconds: 2 });
  const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
  for (const r of result.rounds) {
    console.log(
      `A ${us(r.base.cpuPerOp)} ${r.base.rps.toFixed(0)}/s   B ${us(r.subject.cpuPerOp)} ${r.subject.rps.toFixed(0)}/s   A ÷ B ${(r.base.cpuPerOp / r.subject.cpuPerOp).toFixed(2)}`,
    );
  }
  for (const [name, costs] of databaseCpu) console.log(`PostgreSQL's CPU per request, ${name}: ${costs.map(us).join(', ')} (warm-up first)`);
  console.log(
    `${id}: A ÷ B CPU per request, median ${result.ratio.toFixed(2)} (${result.ratioMin.toFixed(2)}–${result.ratioMax.toFixed(2)}); throughput B ÷ A ${result.rpsRatio.toFixed(2)}`,
  );
} finally {
  await a.server.stop();
  await b.server.stop();
  postgres?.stop();
}
