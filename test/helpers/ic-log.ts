// V8's log of its inline caches (`--log-ic`): every miss, one line each. Read by
// test/hidden-classes.test.ts and bench/tools/ic-misses.ts.

/** Node's arguments that write the IC log of a process to `file` (the whole process in one file). */
export const icLogArgs = (file: string): string[] => ['--log-ic', `--logfile=${file}`, '--no-logfile-per-isolate'];

export interface IcMiss {
  /** Where, by source position and property, not by pc: a site has one pc per tier (interpreted, baseline, optimized). */
  site: string;
  /** The miss's pc, to find the function it is in. */
  pc: number;
  /** The cache's state before and after, e.g. `N→N` (megamorphic, still missing). */
  states: string;
}

/** One line of the log as a miss, or undefined for any other line (code creation, maps, …). */
export function icMiss(line: string): IcMiss | undefined {
  // e.g. StoreIC,0x3f…,23103249,81,21,N,N,0x34…,token_type,,  (kind, pc, time, line, column, old, new, map, key)
  const field = line.split(',');
  if (!/^(Keyed)?(Load|Store|Define)\w*IC$/.test(field[0]!)) return undefined;
  return { site: `${field[0]} at ${field[3]}:${field[4]} of "${field[8]}"`, pc: Number.parseInt(field[1]!, 16), states: `${field[5]}→${field[6]}` };
}
