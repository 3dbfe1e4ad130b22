import { TallyError } from './errors.js';

/** How long a refused caller is told to wait before trying again (Retry-After, seconds). */
export const OVERLOADED_RETRY_AFTER_SECONDS = 2;

/** Work refused because its limiter's bound of waiting tasks was reached: a 503, answered at once. */
export class Overloaded extends TallyError {
  constructor(readonly work: string) {
    super(503, 'temporarily_unavailable', 'the server is busy; try again in a few seconds', { expose: true });
  }
}

/** The Overloaded refusal behind an error (itself, or its cause: oidc-provider's wrapping of it), if any. */
export function overloadedOf(error: unknown): Overloaded | undefined {
  if (error instanceof Overloaded) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause instanceof Overloaded ? cause : undefined;
}

export interface LimiterOptions {
  /** Tasks that may wait for a slot; one more is refused at once with Overloaded. Unbounded by default. */
  maxWaiting?: number;
  /** What the work is, named in the Overloaded error (`client_auth`, `sign_in`, ...). */
  name?: string;
}

/**
 * Runs at most `limit` tasks at once; the others wait their turn, first come first served, up to
 * `maxWaiting` of them: beyond that a task is refused at once (Overloaded) rather than queued.
 */
export function createLimiter(limit: number, { maxWaiting = Number.POSITIVE_INFINITY, name = 'work' }: LimiterOptions = {}) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async function run<T>(task: () => Promise<T>): Promise<T> {
    if (running < limit) running++;
    else if (waiting.length >= maxWaiting) throw new Overloaded(name);
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
