import { TallyError } from '../lib/errors.js';

/**
 * The one renderer of errors that end a process (a CLI command, or the server's start): an error whose
 * message may be shown (bad input, a taken name, a bad environment variable, an option parseArgs
 * refuses) is printed as `tally: <message>` with exit code 2; anything else is a failure of the tool,
 * thrown on with its stack (exit code 1).
 */
export function exitFor(error: unknown): never {
  const shown = error instanceof TallyError ? error.expose : Boolean((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'));
  if (!shown) throw error;
  process.stderr.write(`tally: ${(error as Error).message}\n`);
  process.exit(2);
}
