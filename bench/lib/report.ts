import type { PairedResult } from './paired.ts';
import type { LevelSummary, RunResult } from './measure.ts';
import type { ProfileSummary } from './profile.ts';
import type { ComponentCost } from './components.ts';
import { median } from './stats.ts';

export interface ScenarioResult {
  id: string;
  title: string;
  unit: string;
  levels: LevelSummary[];
  tokenEndpoint?: boolean;
  composite?: boolean;
  notes: string[];
  error?: string;
  /** The run at a fixed offered rate of half its peak, and Express hello's twin run right after it. */
  steady?: SteadyResult;
}

export interface SteadyResult {
  /** Offered operations per second overall (half the scenario's best median throughput). */
  rate: number;
  connections: number;
  /** `autocannon` (overallRate) or `paced loop` (the loop scenarios). */
  generator: string;
  scenario: RunResult;
  express: RunResult;
}

export interface DatabaseResult {
  name: string;
  scenarios: ScenarioResult[];
  idleRss?: number;
  peakRss?: number;
  memory?: string;
  ledger?: { rows: number; seconds: number; total: number; note?: string };
  /** Ratios measured again in interleaved rounds (bench/lib/paired.ts). */
  pairs?: PairedResult[];
}

export interface Target {
  /** The issue that set the goal (20 now; 6 kept for comparison). */
  issue?: number;
  what: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
}

export interface Report {
  date: string;
  machine: Record<string, string>;
  settings: Record<string, string>;
  elapsedS: number;
  baselines: ScenarioResult[];
  /** Median req/s of the Express hello route per level, over all its runs. */
  express: Map<number, number>;
  /** Median server CPU ms per request of the Express hello route per level. */
  expressCpu: Map<number, number>;
  databases: DatabaseResult[];
  targets: Target[];
  components?: ComponentCost[];
  profile?: { scenario: string; database: string; summary: ProfileSummary; file: string };
  analysis?: string;
  warnings: string[];
}

const n0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v === 0 ? '<1' : v < 10 ? v.toFixed(2) : v.toFixed(1));
const cpu = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v < 1 ? v.toFixed(3) : v.toFixed(2));
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;

/** Steady-load p99 against Express hello's; autocannon records whole milliseconds, so a p99 under 1 ms counts as 1 ms. */
export const p99Ratio = (scenario: RunResult, express: RunResult) => Math.max(scenario.p99, 1) / Math.max(express.p99, 1);

export function ratio(rps: number, express: Map<number, number>, connections: number): number | undefined {
  const base = express.get(connections);
  return base ? rps / base : undefined;
}

function scenarioTable(s: ScenarioResult, express: Map<number, number> | undefined, showRatio: boolean): string {
  if (s.error && s.levels.length === 0) return `**Failed:** ${s.error}\n`;
  const head = `| concurrency | ${s.unit} median | min–max | p50 ms | p99 ms median (min–max) | server CPU ms/op | server peak RSS MiB | ${showRatio ? 'ratio to Express hello | ' : ''}failed ops |`;
  const rule = `|---:|---:|---:|---:|---:|---:|---:|${showRatio ? '---:|' : ''}---:|`;
  const rows = s.levels.map((l) => {
    const r = express ? ratio(l.rps, express, l.connections) : undefined;
    return `| ${l.connections} | **${n0(l.rps)}** | ${n0(l.rpsMin)}–${n0(l.rpsMax)} | ${ms(l.p50)} | ${ms(l.p99)} (${ms(l.p99Min)}–${ms(l.p99Max)}) | ${cpu(l.cpuPerOp)} | ${l.rss ? n0(l.rss) : '–'} | ${showRatio ? `${r === undefined ? '–' : `${r.toFixed(2)}×`} | ` : ''}${l.failed} |`;
  });
  return `${[head, rule, ...rows].join('\n')}\n`;
}

export function renderReport(report: Report): string {
  const out: string[] = [];
  out.push('# Tally benchmark results', '');
  out.push(`Written by \`npm run bench\` (bench/run.ts) on ${report.date}; the run took ${(report.elapsedS / 60).toFixed(1)} minutes.`, '');
  out.push('## Machine and settings', '');
  out.push('| | |', '|---|---|');
  for (const [k, v] of Object.entries(report.machine)) out.push(`| ${k} | ${v} |`);
  for (const [k, v] of Object.entries(report.settings)) out.push(`| ${k} | ${v} |`);
  out.push('');
  out.push(
    'Every HTTP scenario runs against a real server process (the compiled server, `node bench/.build/dist/main.js`, `LOG_LEVEL=warn`) ' +
      'with autocannon in the benchmark process; custom loops (refresh, code flow, revocation) use keep-alive HTTP clients with N concurrent workers. ' +
      'Each scenario: one warm-up at the highest concurrency, then the runs, concurrency levels interleaved. Throughput counts 2xx answers (or completed operations) only. ' +
      'The load generator shares the machine with the server, as it did for the baselines: compare ratios, not absolute numbers. ' +
      'Ratios are to the median of every Express-hello run at the same concurrency.',
    '',
  );
  if (report.warnings.length) {
    out.push('**Warnings:**', '');
    for (const w of report.warnings) out.push(`- ${w}`);
    out.push('');
  }

  const targetTable = (targets: Target[]) => {
    out.push('| target | goal | measured | met? |', '|---|---|---|---|');
    for (const t of targets) out.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${t.met === undefined ? 'not measured' : t.met ? 'met' : '**not met**'} |`);
    out.push('');
  };
  // Results from before issue 20 carry no issue number: their targets were issue 6's.
  const now = report.targets.filter((t) => t.issue === 20);
  const earlier = report.targets.filter((t) => t.issue !== 20);
  if (now.length) {
    out.push('## Targets (issue 20)', '');
    out.push(
      "CPU-cost ratio first (the baseline's server CPU per request ÷ the scenario's, at 50 connections), throughput ratio beside it. " +
        '"node-oidc-provider alone" is the peer in the Baselines section (in-memory adapter, secret in the clear). ' +
        'The steady-load rows run each scenario at half its own peak rate, then Express hello at the same offered rate (see "Latency at a steady load").',
      '',
    );
    targetTable(now);
  }
  if (earlier.length) {
    out.push(now.length ? '## Targets of issue 6 (kept for comparison)' : '## Targets (issue 6)', '');
    targetTable(earlier);
  }

  out.push('## Baselines (same run)', '');
  for (const b of report.baselines) {
    out.push(`### ${b.title}`, '');
    out.push(scenarioTable(b, undefined, false));
    for (const note of b.notes) out.push(`- ${note}`);
    if (b.notes.length) out.push('');
  }

  for (const db of report.databases) {
    out.push(`## Tally on ${db.name}`, '');
    const facts: string[] = [];
    if (db.idleRss) facts.push(`server RSS after start-up: ${n0(db.idleRss)} MiB`);
    if (db.peakRss) facts.push(`peak server RSS over the whole run: ${n0(db.peakRss)} MiB`);
    if (db.memory) facts.push(`server memory ${db.memory}`);
    if (db.ledger) {
      facts.push(
        `ledger for the random-token scenarios: ${db.ledger.rows.toLocaleString('en-US')} filler rows written in ${db.ledger.seconds.toFixed(1)} s, ${db.ledger.total.toLocaleString('en-US')} entries in token_entries${db.ledger.note ? ` — ${db.ledger.note}` : ''}`,
      );
    }
    if (db.name === 'PostgreSQL')
      facts.push("server CPU per operation counts the Tally process only; PostgreSQL's own processes, on the same 2 cores, are not included");
    for (const f of facts) out.push(`- ${f}`);
    out.push('');
    out.push('Summary (highest concurrency):', '');
    out.push('| scenario | ops/s | p99 ms | server CPU ms/op | ratio to Express hello | CPU-cost ratio |', '|---|---:|---:|---:|---:|---:|');
    for (const s of db.scenarios) {
      const top = s.levels[s.levels.length - 1];
      if (!top) {
        out.push(`| ${s.id} | failed | | | | |`);
        continue;
      }
      const r = ratio(top.rps, report.express, top.connections);
      const bracket = (v: number | undefined) => (v === undefined ? '–' : s.composite ? `(${v.toFixed(2)}×)` : `${v.toFixed(2)}×`);
      const base = report.expressCpu.get(top.connections);
      const c = base && top.cpuPerOp ? base / top.cpuPerOp : undefined;
      out.push(`| ${s.id} (c=${top.connections}) | ${n0(top.rps)} | ${ms(top.p99)} | ${cpu(top.cpuPerOp)} | ${bracket(r)} | ${bracket(c)} |`);
    }
    out.push(
      '',
      'Ratios in brackets are for operations that are more than one request (or not HTTP at all), given for orientation only. ' +
        "The CPU-cost ratio is Express hello's server CPU time per request divided by this scenario's (all threads of the server process, from /proc/<pid>/stat): " +
        'it estimates the throughput ratio of two CPU-bound servers and is much less sensitive to other load on a shared machine.',
      '',
    );
    if (db.pairs?.length) {
      out.push(`### ${db.name}: ratios measured again in interleaved rounds`, '');
      out.push(
        'Once every scenario has run, each pair that a target compares (DPoP against the same grant without it; Tally against node-oidc-provider alone) runs again in rounds: both sides back to back, in alternating order, at the highest concurrency. ' +
          "A slow minute of the shared machine then lands on both sides of a round, where the two scenarios' own runs were minutes apart. The targets are judged on the median of the per-round ratios.",
        '',
      );
      out.push(
        '| scenario | against | rounds | CPU ms/op of the scenario (median) | CPU ms/op of what it is against (median) | CPU-cost ratio, median (min–max) | throughput ratio |',
        '|---|---|---:|---:|---:|---:|---:|',
      );
      for (const p of db.pairs) {
        const side = (k: 'base' | 'subject') => cpu(median(p.rounds.map((r) => r[k].cpuPerOp)));
        out.push(
          `| ${p.subject} | ${p.base} | ${p.rounds.length} | ${side('subject')} | ${side('base')} | ${p.ratio.toFixed(2)}× (${p.ratioMin.toFixed(2)}–${p.ratioMax.toFixed(2)}) | ${p.rpsRatio.toFixed(2)}× |`,
        );
      }
      out.push('');
    }
    const steady = db.scenarios.filter((s) => s.steady);
    if (steady.length) {
      out.push(`### ${db.name}: latency at a steady load`, '');
      out.push(
        "After its peak runs, each token-endpoint and introspection scenario runs once more at a fixed offered rate of half its best median throughput, at its highest concurrency; Express hello then runs at the same offered rate with the same load generator (see the steady-load generator in the settings: autocannon's `overallRate` sends each connection's share of the rate at the start of each second; the paced loops spread the requests evenly). " +
          'autocannon records whole milliseconds (a p99 under 1 ms counts as 1 ms in the ratio); its coordinated-omission correction is off (it assumes a 1 ms interval at any rate).',
        '',
      );
      out.push(
        "Main thread busy: the share of the run the server's main thread (its event loop) was on a CPU, from /proc, Tally / Express hello; a queue, and with it the p99, grows as it nears 100 %. " +
          'Server CPU per operation at the steady rate is set beside the same at the peak (the highest concurrency): at the lower rate each request meets fewer others to share a turn of the event loop, a system call or a commit with.',
        '',
        '| scenario | offered/s | connections | achieved/s | p50 ms | p99 ms | server CPU ms/op (at the peak) | main thread busy, Tally / Express | Express hello p50 ms | Express hello p99 ms | p99 ratio (goal ≤ 3×) | failed ops |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      );
      const busy = (r: RunResult) => (r.mainThreadBusy === undefined ? '–' : `${Math.round(r.mainThreadBusy * 100)} %`);
      for (const s of steady) {
        const { scenario: a, express: e } = s.steady!;
        const r = p99Ratio(a, e);
        out.push(
          `| ${s.id} | ${n0(s.steady!.rate)} | ${s.steady!.connections} | ${n0(a.rps)} | ${ms(a.p50)} | ${ms(a.p99)} | ${cpu(a.cpuPerOp)} (${cpu(s.levels.at(-1)?.cpuPerOp)}) | ${busy(a)} / ${busy(e)} | ${ms(e.p50)} | ${ms(e.p99)} | ${r > 3 ? `**${r.toFixed(1)}×**` : `${r.toFixed(1)}×`} | ${a.failed} / ${e.failed} |`,
        );
      }
      out.push('');
    }
    for (const s of db.scenarios) {
      out.push(`### ${db.name}: ${s.id} — ${s.title}`, '');
      out.push(scenarioTable(s, report.express, true));
      for (const note of s.notes) out.push(`- ${note}`);
      if (s.error) out.push(`- **error:** ${s.error}`);
      if (s.notes.length || s.error) out.push('');
    }
  }

  if (report.components?.length) {
    out.push('## What one database call costs (in-process, SQLite, same run)', '');
    out.push(
      "Measured in the benchmark process on a fresh SQLite file with Tally's schema (WAL, synchronous = NORMAL, as the server runs), through Prisma with the better-sqlite3 adapter (the admin API, listing, pruning), through the server's own compiled stores (every protocol request) and through better-sqlite3 alone:",
      '',
    );
    out.push('| call | µs per call (fastest of 3 rounds) | median of 3 rounds |', '|---|---:|---:|');
    for (const c of report.components) out.push(`| ${c.what} | ${c.us.toFixed(1)} | ${c.median?.toFixed(1) ?? '–'} |`);
    out.push('');
  }

  if (report.profile) {
    const p = report.profile;
    out.push(`## CPU profile of the server: ${p.scenario} on ${p.database}, 50 connections`, '');
    out.push(
      `\`node --cpu-prof\` on a fresh server during one run (${(p.summary.busyMs / 1000).toFixed(1)} s of CPU on the main thread out of ${(p.summary.totalMs / 1000).toFixed(1)} s sampled; the profile is in ${p.file}). ` +
        'Self time, as a share of the busy (non-idle) main-thread time:',
      '',
    );
    out.push('| where (package or Tally file) | share |', '|---|---:|');
    for (const [k, v] of p.summary.byArea.slice(0, 18)) out.push(`| ${k} | ${pct(v)} |`);
    out.push('', '| function (self time) | share |', '|---|---:|');
    for (const [k, v] of p.summary.byFunction.slice(0, 25)) out.push(`| \`${k.replace(/\|/g, '\\|')}\` | ${pct(v)} |`);
    if (p.summary.inclusive.length) {
      out.push('', 'Inclusive time of stacks passing through:', '', '| frame | share |', '|---|---:|');
      for (const [k, v] of p.summary.inclusive) out.push(`| \`${k}\` | ${pct(v)} |`);
    }
    out.push('');
  }

  if (report.analysis) out.push(report.analysis.trim(), '');
  return out.join('\n');
}
