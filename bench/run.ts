/**
 * `npm run bench`: Tally's benchmark (not a test). Writes bench/results.md (and results.json).
 *
 * What it measures, in one run: the baselines (Express hello before and, in a full run, after the Tally
 * scenarios; Koa hello; node-oidc-provider alone, the peer of issue 20, with its in-memory adapter and
 * its client's secret in the clear: client credentials and introspection of one hot token; raw jose
 * ES256), then every scenario against Tally's compiled server on SQLite (and PostgreSQL when asked).
 * Each scenario: a warm-up, then BENCH_RUNS runs per concurrency level (1 and 50), interleaved, with the
 * server's CPU time per operation from /proc. After its peak runs, every token-endpoint and
 * introspection scenario (cc-*, cc-dpop-*, introspect-*, refresh-*) runs once more at a fixed offered
 * rate of half its own peak, and Express hello right after it at the same rate (latency at a steady
 * load). The targets (bench/lib/targets.ts) are issue 20's, CPU-cost ratio first, with issue 6's below.
 *
 * Environment:
 *   BENCH_DURATION=5       seconds per measured run
 *   BENCH_RUNS=3           runs per scenario and concurrency level
 *   BENCH_WARMUP=2         warm-up seconds per scenario (at the highest concurrency)
 *   BENCH_QUICK=1          smoke run: 1 run of 2 s, 1 s warm-up, fewer scenarios, small ledger
 *   BENCH_ONLY=a,b         only scenarios whose id contains one of these (the Express baseline always runs;
 *                          the peer runs with any of cc-reference, cc-jwt, cc-stateless, introspect-hot-reference)
 *   BENCH_LEDGER=n         filler rows for the random-introspection ledger (default 1,000,000, or
 *                          200,000 when 1,000,000 would take over 60 s here)
 *   BENCH_POOL=n           real tokens per mode to introspect at random (default 2,000)
 *   BENCH_DATABASE_URL=postgresql://...   also run every Tally scenario on this (empty) PostgreSQL database
 *   BENCH_POSTGRES=1       start a throw-away local PostgreSQL (from /usr/lib/postgresql) and run on it too
 *   BENCH_SQLITE=0         skip the SQLite scenarios (e.g. a PostgreSQL-only run into another BENCH_OUT)
 *   BENCH_STEADY=autocannon  the steady-load runs of autocannon scenarios (and their Express twins) through
 *                          autocannon's overallRate instead of the default evenly paced loop of keep-alive clients
 *                          (overallRate sends each connection's share of the rate in a burst at the start of every
 *                          second, so its latency measures how fast a burst drains, not a steady load)
 *   BENCH_PROFILE=0|id     CPU-profile the worst token scenario (default in a full run), or scenario `id`, or none
 *   BENCH_NO_BUILD=1       reuse bench/.build instead of recompiling src/
 *   BENCH_OUT=path         where to write the markdown (default bench/results.md)
 *   BENCH_RENDER=1         only re-render the markdown from results.json (e.g. after editing bench/ANALYSIS.md);
 *                          the targets are judged again against the goals in bench/lib/targets.ts
 *   BENCH_SERVER_ARGS=...  extra node flags for the Tally server, for experiments (e.g.
 *                          "--import ./bench/tools/sql-trace.mjs"); recorded in the results
 *   BENCH_SERVER_ENV="K=V ..."  the Tally server's extra environment; recorded in the results (default
 *                          "MALLOC_MMAP_THRESHOLD_=131072 GLIBC_TUNABLES=glibc.malloc.hugetlb=1", as the Dockerfile sets them; "" for none)
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { joseSigning, startBaseline, startPeer, type BaselineServer, type PeerServer } from './lib/baselines.ts';
import { componentCosts } from './lib/components.ts';
import { closeAgent } from './lib/http.ts';
import { measure } from './lib/measure.ts';
import { pairedRounds, type PairedResult, type PairSide } from './lib/paired.ts';
import { killAllChildren } from './lib/processes.ts';
import { profiledRun } from './lib/profiled-run.ts';
import { postgresBin, startLocalPostgres, type LocalPostgres } from './lib/postgres.ts';
import { renderReport, type DatabaseResult, type Report, type ScenarioResult } from './lib/report.ts';
import { RssSampler, rssMiB } from './lib/rss.ts';
import { createFixtures, tallyScenarios, type Scenario } from './lib/scenarios.ts';
import { steadyRun } from './lib/steady.ts';
import { evaluateTargets, steadyEligible, worstScenario } from './lib/targets.ts';
import { median } from './lib/stats.ts';
import { build, isBuilt, root, startTally } from './lib/tally.ts';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const seconds = Number(env.BENCH_DURATION ?? (quick ? 2 : 5));
const runs = Number(env.BENCH_RUNS ?? (quick ? 1 : 3));
const warmup = Number(env.BENCH_WARMUP ?? (quick ? 1 : 2));
const levels = [1, 50];
const only = (env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const ledgerTarget = Number(env.BENCH_LEDGER ?? (quick ? 20_000 : 1_000_000));
const poolSize = Number(env.BENCH_POOL ?? (quick ? 200 : 2_000));
const pacedSteady = env.BENCH_STEADY !== 'autocannon';
const profileChoice = env.BENCH_PROFILE ?? (quick ? '0' : 'auto');
const outFile = env.BENCH_OUT ?? join(root, 'bench/results.md');
// The Docker image's allocator setting (see Dockerfile): freed argon2 buffers go back to the OS.
const serverEnvText = env.BENCH_SERVER_ENV ?? 'MALLOC_MMAP_THRESHOLD_=131072 GLIBC_TUNABLES=glibc.malloc.hugetlb=1';
const serverEnv = Object.fromEntries(
  serverEnvText
    .split(' ')
    .filter((kv) => kv.includes('='))
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const serverArgs = (env.BENCH_SERVER_ARGS ?? '')
  .split(' ')
  .filter(Boolean)
  .map((a) => (a.startsWith('./') ? join(root, a) : a));

const QUICK_SCENARIOS = new Set([
  'discovery',
  'cc-reference',
  'cc-jwt',
  'cc-stateless',
  'cc-dpop-reference',
  'introspect-hot-reference',
  'introspect-hot-jwt',
  'introspect-random-reference',
  'refresh-reference',
  'code-flow',
  'login-during-flood',
  'revoke-reference',
  'validator-reference',
  'validator-dpop-jwt',
]);

const started = performance.now();
const clock = () => {
  const s = Math.round((performance.now() - started) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const log = (line: string) => process.stdout.write(`[${clock()}] ${line}\n`);

const wanted = (id: string) =>
  (only.length === 0 || only.some((o) => id.includes(o))) && (!quick || QUICK_SCENARIOS.has(id) || id.startsWith('baseline') || id === 'components');

process.on('SIGINT', () => {
  killAllChildren();
  process.exit(130);
});

function machine(): Record<string, string> {
  const cpus = os.cpus();
  let nproc = String(os.availableParallelism());
  try {
    nproc = execSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // keep availableParallelism
  }
  return {
    date: new Date().toISOString(),
    nproc,
    CPU: `${cpus[0]?.model ?? 'unknown'} (${cpus.length} logical)`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    OS: `${os.type()} ${os.release()} ${os.arch()}`,
    'load average at start (1/5/15 min)': os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' / '),
  };
}

/** Measures one scenario; with `twin` (an Express hello server) and a token or introspection scenario, also its steady-load run. */
async function runScenario(s: Scenario, sampler: RssSampler | undefined, twin?: BaselineServer): Promise<ScenarioResult> {
  const result: ScenarioResult = {
    id: s.id,
    title: s.title,
    unit: s.unit,
    levels: [],
    notes: [],
    ...(s.tokenEndpoint ? { tokenEndpoint: true } : {}),
    ...(s.composite ? { composite: true } : {}),
  };
  log(`scenario ${s.id}`);
  try {
    const note = await s.prepare?.();
    if (typeof note === 'string' && note) result.notes.push(note);
    result.levels = await measure(s.run, {
      levels: s.levels ?? levels,
      runs,
      seconds: s.seconds ?? seconds,
      warmupSeconds: s.seconds ? Math.min(warmup, 1) : warmup,
      ...(sampler ? { sampler } : {}),
      log,
      label: s.id,
    });
    if (twin && steadyEligible(s.id)) {
      const steady = await steadyRun(s, result, twin, { seconds: s.seconds ?? seconds, paced: pacedSteady, ...(sampler ? { sampler } : {}), log });
      if (steady) result.steady = steady;
    }
    const after = await s.after?.();
    if (after) result.notes.push(after);
    const failed = result.levels.reduce((sum, l) => sum + l.failed, 0);
    if (failed) result.notes.push(`${failed} operation(s) failed (non-2xx, errors or timeouts) over all runs`);
  } catch (error) {
    result.error = (error as Error).stack?.split('\n').slice(0, 3).join(' ') ?? String(error);
    log(`  FAILED: ${result.error}`);
  }
  return result;
}

/** The scenarios whose issue-20 goal is node-oidc-provider alone: the peer runs when any of them does. */
const PEER_TARGETS = ['cc-reference', 'cc-jwt', 'cc-stateless', 'introspect-hot-reference'];
const TOKEN_MODES = ['reference', 'jwt', 'stateless'] as const;

/** The peer, measured, and kept running for the interleaved pairs with Tally's scenarios. */
interface Peer {
  results: ScenarioResult[];
  server: PeerServer;
  sampler: RssSampler;
  stop(): Promise<void>;
}

/** node-oidc-provider alone (the peer): client credentials, then introspection of one hot token. */
async function peerBaselines(): Promise<Peer> {
  log('starting node-oidc-provider alone (the peer)');
  const peer = await startPeer();
  const sampler = new RssSampler(peer.child.pid);
  const stop = async () => {
    sampler.stop();
    await peer.stop();
  };
  try {
    const cc = await runScenario(
      {
        id: 'baseline-peer-cc',
        title: 'node-oidc-provider alone: client credentials (POST /token, client_secret_basic, secret in the clear, in-memory adapter, opaque token)',
        unit: 'tokens/s',
        run: peer.clientCredentials,
      },
      sampler,
    );
    const introspect = await runScenario(
      {
        id: 'baseline-peer-introspect',
        title: 'node-oidc-provider alone: introspection of one token it issued, over and over (POST /token/introspection, same client)',
        unit: 'req/s',
        prepare: peer.issueHot,
        run: peer.introspection,
        after: async () => {
          await peer.checkHot();
          return 'the hot token still introspected as active after the runs';
        },
      },
      sampler,
    );
    const version = (JSON.parse(readFileSync(join(root, 'node_modules/oidc-provider/package.json'), 'utf8')) as { version: string }).version;
    for (const r of [cc, introspect]) {
      // A peer that did not answer as it should would make every ratio to it meaningless: stop here.
      if (r.error) throw new Error(`the peer baseline ${r.id} failed: ${r.error}`);
      if (r.levels.some((l) => l.failed)) throw new Error(`the peer baseline ${r.id} had failed requests: ${r.notes.join('; ')}`);
      r.notes.push(`oidc-provider ${version} with its in-memory adapter (an LRU of 1,000 entries), in a separate process`);
    }
    return { results: [cc, introspect], server: peer, sampler, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The ratios the targets compare between two servers or two scenarios, measured again in interleaved
 * rounds once every scenario has run (bench/lib/paired.ts): DPoP client credentials against the same
 * grant without it, and Tally against the peer. Only pairs whose two sides ran without failing.
 */
async function interleavedPairs(
  scenarios: Scenario[],
  db: DatabaseResult,
  sampler: RssSampler,
  peer: Peer | undefined,
  report: Report,
): Promise<PairedResult[]> {
  const side = (id: string): PairSide | undefined => {
    const ran = db.scenarios.find((s) => s.id === id);
    const scenario = scenarios.find((s) => s.id === id);
    return ran && !ran.error && !ran.levels.some((l) => l.failed) && scenario ? { id, run: scenario.run, sampler } : undefined;
  };
  type Pair = { base: PairSide | undefined; subject: PairSide | undefined; before?: () => Promise<void>; after?: () => Promise<void> };
  const pairs: Pair[] = [];
  if (peer) {
    const { server, sampler: peerSampler } = peer;
    // The peer's LRU keeps its last 1,000 tokens: the hot token is issued again, and checked after, before any cc pair.
    const peerIntrospection = { id: 'baseline-peer-introspect', run: server.introspection, sampler: peerSampler };
    pairs.push({ base: peerIntrospection, subject: side('introspect-hot-reference'), before: server.issueHot, after: server.checkHot });
    const peerCc = { id: 'baseline-peer-cc', run: server.clientCredentials, sampler: peerSampler };
    for (const mode of TOKEN_MODES) pairs.push({ base: peerCc, subject: side(`cc-${mode}`) });
  }
  for (const mode of TOKEN_MODES) pairs.push({ base: side(`cc-${mode}`), subject: side(`cc-dpop-${mode}`) });
  const results: PairedResult[] = [];
  for (const { base, subject, before, after } of pairs) {
    if (!base || !subject) continue;
    log(`interleaved pair: ${subject.id} against ${base.id}`);
    try {
      await before?.();
      const result = await pairedRounds(base, subject, { rounds: runs, seconds, connections: Math.max(...levels), warmupSeconds: Math.min(warmup, 1), log });
      await after?.();
      results.push(result);
    } catch (error) {
      report.warnings.push(`the interleaved pair ${subject.id} / ${base.id} on ${db.name} failed: ${(error as Error).message}`);
    }
  }
  return results;
}

async function benchTally(name: string, databaseUrl: string | undefined, report: Report, peer: Peer | undefined): Promise<DatabaseResult> {
  log(`starting Tally on ${name}`);
  const server = await startTally({ ...(databaseUrl ? { databaseUrl, name } : { name: 'sqlite' }), nodeArgs: serverArgs, env: serverEnv });
  const sampler = new RssSampler(server.child.pid);
  const db: DatabaseResult = { name, scenarios: [] };
  let twin: BaselineServer | undefined;
  try {
    const fx = await createFixtures(server);
    await new Promise((r) => setTimeout(r, 500));
    db.idleRss = rssMiB(server.child.pid);
    const scenarios = tallyScenarios(fx, {
      dialect: databaseUrl ? 'postgresql' : 'sqlite',
      ledger: { target: ledgerTarget, fallback: Math.min(ledgerTarget, 200_000), budgetS: 180, probeRows: Math.min(ledgerTarget, 100_000) },
      poolSize,
      onSeed: (r) => (db.ledger = { rows: r.rows, seconds: r.seconds, total: r.total, ...(r.note ? { note: r.note } : {}) }),
      log,
    }).filter((s) => wanted(s.id));
    // Express hello beside Tally, idle but for the steady-load twins of the token and introspection scenarios.
    if (scenarios.some((s) => steadyEligible(s.id))) twin = await startBaseline('express-hello.mjs');
    for (const s of scenarios) db.scenarios.push(await runScenario(s, s.id.startsWith('validator') ? undefined : sampler, twin));
    db.pairs = await interleavedPairs(scenarios, db, sampler, peer, report);
    db.peakRss = sampler.overall();
    try {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const mib = (name: string) => Number(new RegExp(`^tally_${name} (\\S+)`, 'm').exec(text)?.[1]) / 2 ** 20;
      db.memory = `at the end: RSS ${Math.round(rssMiB(server.child.pid) ?? NaN)} MiB, of which V8 heap ${Math.round(mib('nodejs_heap_size_total_bytes'))} MiB (${Math.round(mib('nodejs_heap_size_used_bytes'))} MiB used), external ${Math.round(mib('nodejs_external_memory_bytes'))} MiB`;
    } catch {
      // /metrics unavailable: no breakdown
    }
  } finally {
    sampler.stop();
    await twin?.stop();
    const code = await server.stop();
    if (code !== 0) report.warnings.push(`the ${name} server exited with ${code} on SIGTERM`);
  }
  return db;
}

async function profileScenario(id: string, report: Report): Promise<void> {
  log(`profiling ${id} (node --cpu-prof)`);
  const { result, summary, file } = await profiledRun(id, {
    dir: join(root, 'bench/.profiles'),
    warmupSeconds: Math.max(warmup, 1),
    seconds,
    nodeArgs: serverArgs,
    env: serverEnv,
    markers: [
      '@prisma/client',
      'better-sqlite3',
      'adapter-better-sqlite3',
      'argon2',
      'jose',
      'oidc-provider',
      'koa',
      'helmet',
      'prom-client',
      'tally:',
      '(garbage collector)',
    ],
    log,
  });
  log(`  profiled run: ${result.rps.toFixed(0)}/s p99 ${result.p99.toFixed(1)} ms`);
  report.profile = { scenario: id, database: 'SQLite', summary, file: relative(root, file) };
}

async function main() {
  log(`Tally benchmark: ${quick ? 'QUICK smoke run, ' : ''}${runs} run(s) × ${seconds} s per level, ${warmup} s warm-up, levels ${levels.join(' and ')}`);
  if (env.BENCH_NO_BUILD === '1' && isBuilt()) log('reusing bench/.build (BENCH_NO_BUILD=1)');
  else build(log);

  const report: Report = {
    date: new Date().toISOString().slice(0, 10),
    machine: machine(),
    settings: {
      'runs × duration': `${runs} × ${seconds} s per scenario and concurrency level (median reported, min–max spread)`,
      'warm-up': `${warmup} s per scenario`,
      'concurrency levels': levels.join(', '),
      mode: quick ? 'BENCH_QUICK=1 (smoke run: fewer scenarios, small ledger)' : 'full',
      ...(only.length ? { BENCH_ONLY: only.join(', ') } : {}),
      'steady-load generator': pacedSteady
        ? 'an evenly paced loop of keep-alive clients for every scenario and its Express twin'
        : "BENCH_STEADY=autocannon: autocannon's overallRate (each connection's share of the rate sent at the start of each second); a paced loop for refresh",
      ...(serverEnvText ? { 'server environment': `\`${serverEnvText}\`${env.BENCH_SERVER_ENV === undefined ? ' (as in the Dockerfile)' : ''}` } : {}),
      ...(serverArgs.length ? { 'extra server flags (experiment)': `\`${env.BENCH_SERVER_ARGS}\`` } : {}),
    },
    elapsedS: 0,
    baselines: [],
    express: new Map(),
    expressCpu: new Map(),
    databases: [],
    targets: [],
    warnings: [],
  };

  // Baselines: Express hello (before and, in a full run, after the Tally scenarios), Koa hello, jose.
  const expressRuns: ScenarioResult[] = [];
  const baselineServer = async (file: string, id: string, title: string) => {
    const server = await startBaseline(file);
    const sampler = new RssSampler(server.child.pid);
    try {
      return await runScenario({ id, title, unit: 'req/s', run: server.run }, sampler);
    } finally {
      sampler.stop();
      await server.stop();
    }
  };
  expressRuns.push(await baselineServer('express-hello.mjs', 'baseline-express', 'Express 5 "hello" route (GET /, separate process)'));
  if (wanted('baseline-koa')) report.baselines.push(await baselineServer('koa-hello.mjs', 'baseline-koa', 'Koa "hello" route (GET /, separate process)'));
  const peer = wanted('baseline-peer') || PEER_TARGETS.some(wanted) ? await peerBaselines() : undefined;
  if (peer) report.baselines.push(...peer.results);
  if (wanted('baseline-jose')) {
    const jose = await joseSigning();
    report.baselines.push(
      await runScenario(
        {
          id: 'baseline-jose-sign',
          title: 'jose ES256 signing of an access-token JWT, in-process (the crypto floor)',
          unit: 'signs/s',
          seconds: Math.min(seconds, 2),
          run: jose.sign,
        },
        undefined,
      ),
    );
    report.baselines.push(
      await runScenario(
        {
          id: 'baseline-jose-verify',
          title: 'jose ES256 verification of that JWT, in-process',
          unit: 'verifications/s',
          seconds: Math.min(seconds, 2),
          run: jose.verify,
        },
        undefined,
      ),
    );
  }

  if (wanted('components') && env.BENCH_SQLITE !== '0') {
    log('component costs (Prisma vs better-sqlite3, in-process)');
    try {
      report.components = await componentCosts(quick ? 400 : 1000);
      for (const c of report.components) log(`  ${c.us.toFixed(1).padStart(8)} µs  ${c.what}`);
    } catch (error) {
      report.warnings.push(`component costs failed: ${(error as Error).message}`);
    }
  }

  if (env.BENCH_SQLITE !== '0') report.databases.push(await benchTally('SQLite', undefined, report, peer));

  let postgres: LocalPostgres | undefined;
  try {
    let pgUrl = env.BENCH_DATABASE_URL;
    if (!pgUrl && env.BENCH_POSTGRES === '1') {
      const bin = postgresBin();
      if (!bin) report.warnings.push('BENCH_POSTGRES=1 but no /usr/lib/postgresql/*/bin: PostgreSQL not benchmarked');
      else {
        log(`starting a local PostgreSQL from ${bin}`);
        postgres = await startLocalPostgres(bin);
        pgUrl = postgres.url;
      }
    }
    if (pgUrl) report.databases.push(await benchTally('PostgreSQL', pgUrl, report, peer));
    else if (!env.BENCH_POSTGRES)
      report.warnings.push('PostgreSQL not benchmarked in this run (set BENCH_POSTGRES=1 to start a local one, or BENCH_DATABASE_URL)');
  } catch (error) {
    report.warnings.push(`PostgreSQL run failed: ${(error as Error).message}`);
    log(`PostgreSQL run failed: ${(error as Error).stack}`);
  } finally {
    postgres?.stop();
    await peer?.stop();
  }

  if (!quick)
    expressRuns.push(
      await baselineServer('express-hello.mjs', 'baseline-express', 'Express 5 "hello" route (GET /, separate process), after the Tally scenarios'),
    );

  // Express: the median of all its runs per level.
  const express: ScenarioResult = { ...expressRuns[0]!, title: 'Express 5 "hello" route (GET /, separate process)', notes: [] };
  express.levels = levels.map((c) => {
    const all = expressRuns.flatMap((r) => r.levels.find((l) => l.connections === c)?.runs ?? []);
    const rps = all.map((r) => r.rps);
    const p99 = all.map((r) => r.p99);
    const rss = all.map((r) => r.rss ?? 0);
    const cpu = all.map((r) => r.cpuPerOp).filter((v): v is number => v !== undefined);
    return {
      connections: c,
      runs: all,
      ...(cpu.length ? { cpuPerOp: median(cpu) } : {}),
      rps: median(rps),
      rpsMin: Math.min(...rps),
      rpsMax: Math.max(...rps),
      p50: median(all.map((r) => r.p50)),
      p99: median(p99),
      p99Min: Math.min(...p99),
      p99Max: Math.max(...p99),
      rss: Math.max(...rss),
      failed: all.reduce((s, r) => s + r.failed, 0),
    };
  });
  if (expressRuns.length > 1) {
    express.notes.push(
      `measured before and after the Tally scenarios (${expressRuns.map((r, i) => `${i ? 'after' : 'before'}: ${r.levels.map((l) => `c=${l.connections} ${Math.round(l.rps)}/s`).join(', ')}`).join('; ')}); the table and every ratio use the median of all ${express.levels[0]?.runs.length ?? 0} runs per level`,
    );
  }
  report.baselines.unshift(express);
  for (const l of express.levels) {
    report.express.set(l.connections, l.rps);
    if (l.cpuPerOp) report.expressCpu.set(l.connections, l.cpuPerOp);
  }

  report.targets = evaluateTargets(report);

  if (profileChoice !== '0') {
    const id = profileChoice === 'auto' ? worstScenario(report) : profileChoice;
    if (id) {
      try {
        await profileScenario(id, report);
      } catch (error) {
        report.warnings.push(`profiling ${id} failed: ${(error as Error).message}`);
      }
    }
  }

  report.machine['load average at end (1/5/15 min)'] = os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' / ');
  report.elapsedS = (performance.now() - started) / 1000;
  report.analysis = analysis(report);
  writeFileSync(outFile, renderReport(report));
  writeFileSync(
    outFile.replace(/\.md$/, '.json'),
    JSON.stringify({ ...report, analysis: undefined, express: Object.fromEntries(report.express), expressCpu: Object.fromEntries(report.expressCpu) }, null, 2),
  );
  log(`wrote ${relative(root, outFile)} in ${(report.elapsedS / 60).toFixed(1)} minutes`);
  for (const t of report.targets) log(`  ${t.met === undefined ? '?' : t.met ? 'met    ' : 'NOT MET'} ${t.what}: ${t.measured} (goal ${t.goal})`);
}

/** The "where Tally falls short" section: unmet targets from this run, then bench/ANALYSIS.md (hand-written). */
function analysis(report: Report): string {
  const lines = ['## Where Tally falls short and why', ''];
  const unmet = report.targets.filter((t) => t.met === false);
  if (unmet.length === 0) lines.push('Every measured target was met in this run.', '');
  else {
    lines.push('Targets not met in this run:', '');
    for (const t of unmet) lines.push(`- ${t.what}: ${t.measured} (goal ${t.goal})`);
    lines.push('');
  }
  const notes = join(root, 'bench/ANALYSIS.md');
  if (existsSync(notes)) lines.push(readFileSync(notes, 'utf8').trim(), '');
  return lines.join('\n');
}

/** Re-renders results.md from results.json (the numbers of the last run) and the current ANALYSIS.md. */
function renderOnly() {
  const json = JSON.parse(readFileSync(outFile.replace(/\.md$/, '.json'), 'utf8')) as Report & {
    express: Record<string, number>;
    expressCpu: Record<string, number>;
  };
  const report: Report = {
    ...json,
    express: new Map(Object.entries(json.express).map(([k, v]) => [Number(k), v])),
    expressCpu: new Map(Object.entries(json.expressCpu ?? {}).map(([k, v]) => [Number(k), v])),
  };
  // The goals are this file's (bench/lib/targets.ts): judge the stored numbers against them again.
  report.targets = evaluateTargets(report);
  report.analysis = analysis(report);
  writeFileSync(outFile, renderReport(report));
  log(`re-rendered ${relative(root, outFile)} from ${relative(root, outFile.replace(/\.md$/, '.json'))}`);
}

(env.BENCH_RENDER === '1' ? Promise.resolve().then(renderOnly) : main())
  .catch((error) => {
    log(`benchmark failed: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAllChildren();
    closeAgent();
  });
