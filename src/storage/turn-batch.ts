/** An ask waiting for its batch, with its promise's two ends. */
export interface BatchedAsk<Ask, Answer> {
  ask: Ask;
  resolve(answer: Answer): void;
  reject(error: unknown): void;
}

const UNANSWERED = new Error('a batched ask was left unanswered');

/**
 * The asks made in one turn of the event loop, answered together: one round trip and one commit for
 * many (PostgreSQL's multi-row inserts, the replay marks). `answer` gets the turn's asks in order, at
 * most `max` at a time, and settles each; when it throws, the asks it left unsettled fail with its
 * error (a promise settles once: the others keep their answer).
 */
export function createTurnBatch<Ask, Answer>(answer: (asks: BatchedAsk<Ask, Answer>[]) => Promise<void>, max: number): (ask: Ask) => Promise<Answer> {
  let waiting: BatchedAsk<Ask, Answer>[] = [];

  async function answerChunk(chunk: BatchedAsk<Ask, Answer>[]) {
    let failure: unknown = UNANSWERED;
    try {
      await answer(chunk);
    } catch (error) {
      failure = error;
    }
    for (const entry of chunk) entry.reject(failure);
  }

  function flush() {
    const turn = waiting;
    waiting = [];
    for (let start = 0; start < turn.length; start += max) void answerChunk(turn.slice(start, start + max));
  }

  return (ask) =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ ask, resolve, reject });
    });
}

/**
 * A turn batch of claims on keys (a one-time mark, a single use): `claim` gets the turn's first ask for
 * each key and answers the keys it won. The same key asked for twice in one turn: the first ask may
 * win, the others never do.
 */
export function createClaimTurnBatch<Ask>(
  keyOf: (ask: Ask) => string,
  claim: (firstAsks: Ask[]) => Promise<ReadonlySet<string>>,
  max: number,
): (ask: Ask) => Promise<boolean> {
  return createTurnBatch<Ask, boolean>(async (asks) => {
    const first = new Map<string, BatchedAsk<Ask, boolean>>();
    for (const ask of asks) if (!first.has(keyOf(ask.ask))) first.set(keyOf(ask.ask), ask);
    const won = await claim([...first.values()].map((entry) => entry.ask));
    for (const ask of asks) ask.resolve(first.get(keyOf(ask.ask)) === ask && won.has(keyOf(ask.ask)));
  }, max);
}
