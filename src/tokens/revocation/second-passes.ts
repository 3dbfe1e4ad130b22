import type { Logger } from '../../config/logger.js';

/** How often a server process looks for due second passes of bulk revocations. */
export const SECOND_PASS_POLL_MS = 500;

/**
 * Runs the due second passes of bulk revocations (see revocation.ts) every `intervalMs`: every server
 * process polls, and each pass is taken by one of them, so a pass recorded by a process that has
 * since stopped still runs. Returns the function that stops polling (once a poll under way is over).
 */
export function pollSecondPasses(ledger: { runDuePasses(): Promise<number> }, logger: Logger, intervalMs = SECOND_PASS_POLL_MS): () => Promise<void> {
  let running: Promise<void> | undefined;
  // Told once when polls start to fail (the database is away, say) and once when they work again.
  let failing = false;
  const poll = async () => {
    try {
      await ledger.runDuePasses();
      if (failing) logger.info('second passes of bulk revocations run again');
      failing = false;
    } catch (error) {
      if (!failing) logger.warn({ err: error }, `second passes of bulk revocations failed; retrying every ${intervalMs} ms`);
      failing = true;
    }
  };
  const timer = setInterval(() => {
    running ??= poll().finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
