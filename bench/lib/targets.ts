import type { LevelSummary } from './measure.ts';
import { p99Ratio, ratio, type DatabaseResult, type Report, type ScenarioResult, type Target } from './report.ts';
import { median } from './stats.ts';

/** The run's highest concurrency level: every ratio is taken there. */
export const TOP = 50;

/** Steady-load latency: a scenario's p99 at half its peak may be at most this many times Express hello's. */
export const STEADY_P99_GOAL = 3;

/** Scenarios that get a run at a steady offered load (every token-endpoint and introspection scenario). */
export const steadyEligible = (id: string) => /^(cc-|introspect-|refresh-)/.test(id);

const n0 = (v: number) => Math.round(v).toLocaleString('en-US');
const ms = (v: number) => (v < 1 ? v.toFixed(3) : v.toFixed(2));
/** Latencies: autocannon's are whole milliseconds, the loops' are not. */
const lat = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(0));

function level(s: ScenarioResult | undefined, connections = TOP): LevelSummary | undefined {
  return s?.levels.find((l) => l.connections === connections);
}

interface Base {
  name: string;
  cpu: number | undefined;
  rps: number | undefined;
  /** The baseline scenario's id, when the run measured the pair again in interleaved rounds. */
  id?: string;
}

/** Issue 20's CPU-cost goals: the scenario, what it is measured against, and the goal. */
function cpuGoals(report: Report, db: DatabaseResult): { id: string; what: string; base: Base; goal: number }[] {
  const peerLevel = (id: string) => level(report.baselines.find((b) => b.id === id));
  const peerCc = peerLevel('baseline-peer-cc');
  const peerIntrospect = peerLevel('baseline-peer-introspect');
  const peer = (id: string, l: LevelSummary | undefined): Base => ({ name: 'node-oidc-provider alone', cpu: l?.cpuPerOp, rps: l?.rps, id });
  const express: Base = { name: 'Express hello', cpu: report.expressCpu.get(TOP), rps: report.express.get(TOP) };
  const goals = [];
  for (const mode of ['reference', 'jwt', 'stateless'])
    goals.push({ id: `cc-${mode}`, what: `client credentials, ${mode} mode`, base: peer('baseline-peer-cc', peerCc), goal: 1.2 });
  goals.push({
    id: 'introspect-hot-reference',
    what: 'introspection of a hot reference token',
    base: peer('baseline-peer-introspect', peerIntrospect),
    goal: 1.2,
  });
  for (const mode of ['reference', 'jwt', 'stateless'])
    goals.push({ id: `refresh-${mode}`, what: `refresh rotation, ${mode} mode`, base: express, goal: db.name === 'PostgreSQL' ? 0.2 : 0.25 });
  for (const mode of ['jwt', 'stateless']) {
    goals.push({ id: `introspect-hot-${mode}`, what: `introspection of a hot ${mode} token`, base: express, goal: 0.6 });
    goals.push({ id: `introspect-random-${mode}`, what: `introspection of random ${mode} tokens from the big ledger`, base: express, goal: 0.45 });
  }
  return goals;
}

/** CPU-cost ratio (the base's CPU per request ÷ the scenario's) and throughput ratio, at the top level. */
function versus(l: LevelSummary | undefined, base: Base): { cpu?: number; rps?: number } {
  if (!l) return {};
  return {
    ...(base.cpu && l.cpuPerOp ? { cpu: base.cpu / l.cpuPerOp } : {}),
    ...(base.rps ? { rps: l.rps / base.rps } : {}),
  };
}

/**
 * A ratio measured in interleaved rounds (bench/lib/paired.ts), when the run has it: judged on it, with
 * the ratio of the two scenarios' separate runs beside it.
 */
function pairedText(db: DatabaseResult, baseId: string | undefined, subjectId: string, separate: string) {
  const pair = baseId ? db.pairs?.find((p) => p.base === baseId && p.subject === subjectId) : undefined;
  if (!pair) return undefined;
  const cpu = (side: 'base' | 'subject') => ms(median(pair.rounds.map((r) => r[side].cpuPerOp)));
  return {
    ratio: pair.ratio,
    text:
      `CPU-cost ratio **${pair.ratio.toFixed(2)}×**, the median of ${pair.rounds.length} interleaved round(s) ` +
      `(${pair.ratioMin.toFixed(2)}–${pair.ratioMax.toFixed(2)}×; ${cpu('subject')} vs ${cpu('base')} ms of server CPU per request); ` +
      `throughput ${pair.rpsRatio.toFixed(2)}×; separate runs: ${separate}`,
  };
}

function issue20(report: Report, db: DatabaseResult): Target[] {
  const targets: Target[] = [];
  const find = (id: string) => db.scenarios.find((s) => s.id === id);
  const row = (what: string, goal: string, measured: string, met: boolean | undefined) => targets.push({ issue: 20, what, goal, measured, met });

  for (const g of cpuGoals(report, db)) {
    const what = `${g.what} (${db.name}, ${TOP} connections)`;
    const goal = `≥ ${g.goal}× ${g.base.name} in CPU cost`;
    const l = level(find(g.id));
    if (!l || !g.base.rps) {
      row(what, goal, l ? `${g.base.name} not run` : 'not run', undefined);
      continue;
    }
    const r = versus(l, g.base);
    const cpuText =
      r.cpu !== undefined ? `CPU-cost ratio **${r.cpu.toFixed(2)}×** (${ms(l.cpuPerOp!)} vs ${ms(g.base.cpu!)} ms of server CPU per request); ` : '';
    const separate = `${cpuText}throughput ${r.rps!.toFixed(2)}× (${n0(l.rps)}/s vs ${n0(g.base.rps)}/s)`;
    const paired = pairedText(db, g.base.id, g.id, separate.replaceAll('**', ''));
    row(what, goal, paired?.text ?? separate, (paired?.ratio ?? r.cpu ?? r.rps!) >= g.goal);
  }

  {
    const s = find('code-flow');
    const what = `full code flow with sign-in, server CPU per flow (${db.name})`;
    const l = level(s) ?? s?.levels.at(-1);
    if (!l?.cpuPerOp) row(what, '≤ 60 ms', 'not run', undefined);
    else {
      const others = s!.levels.filter((x) => x !== l && x.cpuPerOp).map((x) => `${x.cpuPerOp!.toFixed(1)} ms at ${x.connections} worker(s)`);
      row(
        what,
        '≤ 60 ms of server CPU per flow',
        `**${l.cpuPerOp.toFixed(1)} ms** at ${l.connections} workers (${n0(l.rps)} flows/s)${others.length ? `; ${others.join(', ')}` : ''}`,
        l.cpuPerOp <= 60,
      );
    }
  }

  for (const s of db.scenarios.filter((x) => steadyEligible(x.id))) {
    const what = `p99 at a steady load of half its peak, ${s.id} (${db.name})`;
    const goal = `≤ ${STEADY_P99_GOAL}× Express hello's p99 at the same offered rate`;
    if (!s.steady) {
      row(what, goal, 'not run', undefined);
      continue;
    }
    const { scenario: a, express: e } = s.steady;
    const r = p99Ratio(a, e);
    row(
      what,
      goal,
      `**${r.toFixed(1)}×**: p99 ${lat(a.p99)} vs ${lat(e.p99)} ms (p50 ${lat(a.p50)} vs ${lat(e.p50)}) at ${n0(s.steady.rate)}/s offered over ${s.steady.connections} connections (${s.steady.generator})${a.failed || e.failed ? `; failed ${a.failed} / ${e.failed}` : ''}`,
      r <= STEADY_P99_GOAL && a.failed === 0,
    );
  }

  // DPoP against the same grant without it, in the same run: CPU cost first, throughput beside it.
  for (const mode of ['reference', 'jwt', 'stateless']) {
    const bound = level(find(`cc-dpop-${mode}`));
    const plain = level(find(`cc-${mode}`));
    const what = `client credentials with DPoP against without, ${mode} mode (${db.name}, ${TOP} connections)`;
    if (!bound || !plain) {
      row(what, '≥ 0.7× plain client credentials in CPU cost', 'not run', undefined);
      continue;
    }
    const byCpu = bound.cpuPerOp && plain.cpuPerOp ? plain.cpuPerOp / bound.cpuPerOp : undefined;
    const separate = `${byCpu !== undefined ? `CPU-cost ratio **${byCpu.toFixed(2)}×** (${bound.cpuPerOp!.toFixed(2)} vs ${plain.cpuPerOp!.toFixed(2)} ms per request); ` : ''}throughput ${(bound.rps / plain.rps).toFixed(2)}× (${n0(bound.rps)}/s vs ${n0(plain.rps)}/s)`;
    const paired = pairedText(db, `cc-${mode}`, `cc-dpop-${mode}`, separate.replaceAll('**', ''));
    row(what, '≥ 0.7× plain client credentials in CPU cost', paired?.text ?? separate, (paired?.ratio ?? byCpu ?? bound.rps / plain.rps) >= 0.7);
  }

  if (db.peakRss)
    row(
      `peak server RSS over the whole run (${db.name})`,
      '< 300 MB',
      `${Math.round(db.peakRss)} MiB (${Math.round(db.peakRss * 1.048576)} MB)`,
      db.peakRss * 1.048576 < 300,
    );
  return targets;
}

/** Issue 6's throughput goals, kept below issue 20's for comparison with earlier runs. */
function issue6(report: Report, db: DatabaseResult): Target[] {
  const targets: Target[] = [];
  const find = (id: string) => db.scenarios.find((s) => s.id === id);
  const ratioTarget = (id: string, what: string, goal: number) => {
    const l = level(find(id));
    if (!l) return targets.push({ issue: 6, what: `${what} (${db.name})`, goal: `≥ ${goal}× Express hello`, measured: 'not run', met: undefined });
    const r = ratio(l.rps, report.express, TOP)!;
    const base = report.expressCpu.get(TOP);
    const byCpu =
      base && l.cpuPerOp
        ? ` (CPU-cost ratio ${(base / l.cpuPerOp).toFixed(2)}×: ${l.cpuPerOp.toFixed(2)} ms of server CPU per request vs ${base.toFixed(3)})`
        : '';
    targets.push({
      issue: 6,
      what: `${what} (${db.name}, ${TOP} connections)`,
      goal: `≥ ${goal}× Express hello (≥ ${n0(goal * report.express.get(TOP)!)}/s in this run)`,
      measured: `${n0(l.rps)}/s = ${r.toFixed(2)}×${byCpu}`,
      met: r >= goal,
    });
  };
  ratioTarget('cc-stateless', 'client credentials, stateless mode', 0.5);
  ratioTarget('cc-jwt', 'client credentials, jwt mode', 0.35);
  ratioTarget('cc-reference', 'client credentials, reference mode', 0.35);
  ratioTarget('introspect-hot-reference', 'introspection of a reference token', 0.6);
  if (db.name === 'SQLite') {
    for (const mode of ['reference', 'jwt', 'stateless']) {
      const s = find(`refresh-${mode}`);
      const best = s?.levels.length ? s.levels.reduce((a, b) => (b.rps > a.rps ? b : a)) : undefined;
      targets.push({
        issue: 6,
        what: `refresh rotation, ${mode} mode (SQLite)`,
        goal: '≥ 1,000/s',
        measured: best
          ? `${n0(best.rps)}/s (best level, ${best.connections} workers) = ${ratio(best.rps, report.express, best.connections)!.toFixed(3)}× Express hello at ${best.connections} connections`
          : 'not run',
        met: best ? best.rps >= 1000 : undefined,
      });
    }
  }
  const tokenScenarios = db.scenarios.filter((s) => s.tokenEndpoint && level(s));
  if (tokenScenarios.length) {
    const worst = tokenScenarios.reduce((a, b) => (level(b)!.p99 > level(a)!.p99 ? b : a));
    const list = tokenScenarios.map((s) => `${s.id} ${level(s)!.p99.toFixed(1)}`).join(', ');
    const expressP99 = level(report.baselines.find((b) => b.id === 'baseline-express'))?.p99;
    targets.push({
      issue: 6,
      what: `p99 latency of every token-endpoint scenario at ${TOP} connections (${db.name})`,
      goal: '< 25 ms (withdrawn by issue 20: queueing at saturation)',
      measured: `worst ${worst.id}: ${level(worst)!.p99.toFixed(1)} ms (${list})${expressP99 !== undefined ? `; Express hello's own p99 in this run: ${expressP99.toFixed(1)} ms` : ''}`,
      met: level(worst)!.p99 < 25,
    });
  }
  return targets;
}

export function evaluateTargets(report: Report): Target[] {
  return [...report.databases.flatMap((db) => issue20(report, db)), ...report.databases.flatMap((db) => issue6(report, db))];
}

/** The SQLite scenario furthest below its issue-20 CPU-cost goal: the one a full run profiles. */
export function worstScenario(report: Report): string | undefined {
  const sqlite = report.databases.find((d) => d.name === 'SQLite');
  if (!sqlite) return undefined;
  let worst: [string, number] | undefined;
  for (const g of cpuGoals(report, sqlite)) {
    const cpu = versus(level(sqlite.scenarios.find((s) => s.id === g.id)), g.base).cpu;
    if (cpu === undefined) continue;
    if (!worst || cpu / g.goal < worst[1]) worst = [g.id, cpu / g.goal];
  }
  return worst?.[0];
}
