/**
 * Redis first, the database while Redis does not answer: the rule of every store Tally keeps in
 * Redis when REDIS_URL is set and must not lose during an outage (throttle counts, one-time marks).
 *
 * - After Redis fails to answer, the database alone for `retryMs`: requests do not each wait for
 *   Redis's reconnection meanwhile, and `onFallback` is told once per outage, not once per request.
 * - What was written to the database meanwhile stays in force until it expires. Once Redis answers
 *   again, the database is read beside it for as long as any such record may live: otherwise a
 *   lockout counted during the outage, or a DPoP proof marked used then, would be forgotten when
 *   Redis came back, and the proof could be replayed.
 *
 * What this replica cannot know by this rule alone: records another replica wrote to the database
 * during an outage that this one never saw (Redis unreachable from that replica only; the one-time
 * marks are copied into Redis once it answers again, replay-marks.ts, the throttle's counts are not),
 * and records a Redis restarted empty has lost. Both last no longer than the records' own lifetimes.
 */
export interface RedisFallback {
  /** Redis's answer to `call`; `undefined` when Redis is down or fails now (the caller uses the database). */
  primary<T>(call: () => Promise<T>): Promise<{ answer: T } | undefined>;
  /** A record written to the database in Redis's place, live until `expiresAt`. */
  wroteToFallback(expiresAt: Date): void;
  /** Whether a record written to the database in Redis's place may still be live. */
  fallbackLive(now?: number): boolean;
}

export const REDIS_RETRY_MS = 5_000;

/**
 * `isOutage`: which errors mean "Redis did not answer" (any other is thrown, not hidden).
 * `onRecovered`: called once when Redis answers again after an outage.
 */
export function createRedisFallback(
  onFallback: (error: unknown) => void,
  { isOutage = () => true, retryMs = REDIS_RETRY_MS, onRecovered }: { isOutage?: (error: unknown) => boolean; retryMs?: number; onRecovered?: () => void } = {},
): RedisFallback {
  // Non-zero while Redis is taken as down: after a failed call, until a call succeeds again (it is
  // tried again from this time on).
  let primaryDownUntil = 0;
  let fallbackLiveUntil = 0;
  return {
    async primary(call) {
      if (Date.now() < primaryDownUntil) return undefined;
      try {
        const answer = await call();
        if (primaryDownUntil !== 0) {
          primaryDownUntil = 0;
          onRecovered?.();
        }
        return { answer };
      } catch (error) {
        if (!isOutage(error)) throw error;
        // Told when the outage begins, not again at each failed retry while it lasts.
        if (primaryDownUntil === 0) onFallback(error);
        primaryDownUntil = Date.now() + retryMs;
        return undefined;
      }
    },
    wroteToFallback(expiresAt) {
      fallbackLiveUntil = Math.max(fallbackLiveUntil, expiresAt.getTime());
    },
    fallbackLive(now = Date.now()) {
      return now < fallbackLiveUntil;
    },
  };
}
