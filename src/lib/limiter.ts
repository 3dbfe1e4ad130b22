/** Runs at most `limit` tasks at once; the others wait their turn, first come first served. */
export function createLimiter(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async function run<T>(task: () => Promise<T>): Promise<T> {
    if (running < limit) running++;
    else await new Promise<void>((resume) => waiting.push(resume));
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next task, if any.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
