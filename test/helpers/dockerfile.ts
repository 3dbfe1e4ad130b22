// The Dockerfile read as instructions per stage (no container runtime here to build it): what the
// container and compose tests lay out and run in its place.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './server.ts';

export interface Stage {
  name: string;
  instructions: { op: string; args: string }[];
}

export const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

/** Its stages in order: continuation lines joined, comments dropped. */
export function stagesOf(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!op) continue;
    if (op === 'FROM') stages.push({ name: /\bAS\s+(\S+)/i.exec(args!)?.[1] ?? '', instructions: [] });
    else stages.at(-1)!.instructions.push({ op, args: args! });
  }
  return stages;
}

/** The arguments of each `op` instruction of a stage. */
export const argumentsOf = (stage: Stage, op: string): string[] => stage.instructions.filter((i) => i.op === op).map((i) => i.args);

/** A stage's ENV, as the container gets it. */
export function environmentOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of argumentsOf(stage, 'ENV')) for (const [, key, value] of line.matchAll(/(\w+)=(\S+)/g)) env[key!] = value!;
  return env;
}
