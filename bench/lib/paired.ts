import type { RunOnce } from './measure.ts';
import type { RssSampler } from './rss.ts';
import { max, median, min } from './stats.ts';

/** One side of a pair: a scenario's runner and the sampler of the process that serves it. */
export interface PairSide {
  id: string;
  run: RunOnce;
  sampler: RssSampler;
}

/** Server CPU per operation (ms) and throughput of one run of each side, run back to back. */
export interface PairRound {
  base: { cpuPerOp: number; rps: number };
  subject: { cpuPerOp: number; rps: number };
}

/**
 * A CPU-cost ratio measured in interleaved rounds: each round runs both sides back to back (the order
 * alternating, ABBA), so a slow minute of the shared machine lands on both. The ratio of the two
 * scenarios' medians, taken from runs minutes apart, moved by ±30 % here; the per-round ratio does not
 * carry that drift.
 */
export interface PairedResult {
  base: string;
  subject: string;
  connections: number;
  rounds: PairRound[];
  /** base CPU ÷ subject CPU, per round: its median, and its spread. */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  /** The same from throughput (subject ÷ base). */
  rpsRatio: number;
}

export interface PairOptions {
  rounds: number;
  seconds: number;
  connections: number;
  warmupSeconds: number;
  log?: (line: string) => void;
}

async function cpuRun(side: PairSide, connections: number, seconds: number) {
  side.sampler.mark();
  const result = await side.run(connections, seconds);
  if (!result.ok) throw new Error(`${side.id}: no successful operation in a paired run`);
  if (result.failed) throw new Error(`${side.id}: ${result.failed} failed operation(s) in a paired run`);
  return { cpuPerOp: side.sampler.cpuSinceMark() / result.ok, rps: result.rps };
}

/** `rounds` interleaved rounds of `base` and `subject` at one concurrency, after a warm-up of each. */
export async function pairedRounds(base: PairSide, subject: PairSide, options: PairOptions): Promise<PairedResult> {
  const { connections, seconds } = options;
  if (options.warmupSeconds > 0) {
    await base.run(connections, options.warmupSeconds);
    await subject.run(connections, options.warmupSeconds);
  }
  const rounds: PairRound[] = [];
  for (let i = 0; i < options.rounds; i++) {
    const baseFirst = i % 2 === 0;
    const first = await cpuRun(baseFirst ? base : subject, connections, seconds);
    const second = await cpuRun(baseFirst ? subject : base, connections, seconds);
    const round = baseFirst ? { base: first, subject: second } : { base: second, subject: first };
    rounds.push(round);
    options.log?.(
      `  pair ${subject.id} / ${base.id} round ${i + 1}: ${round.subject.cpuPerOp.toFixed(3)} vs ${round.base.cpuPerOp.toFixed(3)} ms/op = ${(round.base.cpuPerOp / round.subject.cpuPerOp).toFixed(2)}×`,
    );
  }
  const ratios = rounds.map((r) => r.base.cpuPerOp / r.subject.cpuPerOp);
  return {
    base: base.id,
    subject: subject.id,
    connections,
    rounds,
    ratio: median(ratios),
    ratioMin: min(ratios),
    ratioMax: max(ratios),
    rpsRatio: median(rounds.map((r) => r.subject.rps / r.base.rps)),
  };
}
