#!/usr/bin/env node
import { commands, HELP } from './commands.js';
import { exitFor } from './exit.js';

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

await main(process.argv.slice(2)).catch(exitFor);
