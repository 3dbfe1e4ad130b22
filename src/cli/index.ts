#!/usr/bin/env node
import { TallyError } from '../lib/errors.js';
import { commands, HELP } from './commands.js';

async function main(argv: string[]) {
  const words = argv.filter((a) => !a.startsWith('-'));
  const name = [words.slice(0, 2).join(' '), words[0] ?? ''].find((n) => n in commands || n in HELP) ?? '';
  const rest = argv.slice(argv.indexOf(name.split(' ').at(-1)!) + 1);
  if (argv.includes('--help') || argv.includes('-h') || !(name in commands)) {
    process.stdout.write(`${HELP[name] ?? HELP['']}\n`);
    if (!(name in commands) && !argv.includes('--help') && !argv.includes('-h')) process.exitCode = 1;
    return;
  }
  await commands[name]!(name ? rest : argv);
}

/**
 * The CLI's one error renderer: an error whose message may be shown (bad input, a taken name, a bad
 * environment variable, an option parseArgs refuses) is printed as `tally: <message>` with exit code
 * 2; anything else is a failure of the tool, thrown with its stack (exit code 1).
 */
function exitFor(error: unknown): never {
  const shown = error instanceof TallyError ? error.expose : Boolean((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'));
  if (!shown) throw error;
  process.stderr.write(`tally: ${(error as Error).message}\n`);
  process.exit(2);
}

await main(process.argv.slice(2)).catch(exitFor);
