import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

export interface Compiled {
  /** The compiled tree: `<into>/dist`, run as `node <dist>/main.js`. */
  dist: string;
  /** tsc's first type errors, when it reported some (it emits anyway). */
  typeErrors?: string;
}

/**
 * A private compiled copy of src/ for the benchmark and the test runner, so that a concurrent
 * `npm run build` cannot change it under them: `<into>/dist`, compiled with the project's tsconfig
 * (no declarations, no source maps), and `<into>/views` and `<into>/migrations` linked to the real ones
 * (the code finds them at `<its file>/../../views`). `incremental` keeps tsc's state beside it and
 * recompiles only what changed (a file removed from src/ then stays in dist, unused); without it the
 * tree is compiled afresh. Throws when tsc leaves no main.js.
 */
export function compileInto(into: string, { incremental = false } = {}): Compiled {
  if (!existsSync(join(root, 'src/storage/generated/sqlite'))) {
    const generate = spawnSync('npm', ['run', 'generate'], { cwd: root, encoding: 'utf8' });
    if (generate.status !== 0) throw new Error(`npm run generate failed:\n${generate.stdout}\n${generate.stderr}`);
  }
  const dist = join(into, 'dist');
  if (!incremental) rmSync(dist, { recursive: true, force: true });
  mkdirSync(into, { recursive: true });
  const tsc = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      ...['-p', join(root, 'tsconfig.json'), '--outDir', dist, '--declaration', 'false', '--sourceMap', 'false'],
      ...(incremental ? ['--incremental', '--tsBuildInfoFile', join(into, 'tsbuildinfo')] : []),
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (!existsSync(join(dist, 'main.js'))) throw new Error(`tsc produced no main.js:\n${tsc.stdout}\n${tsc.stderr}`);
  for (const name of ['views', 'migrations']) {
    const link = join(into, name);
    if (!existsSync(link)) symlinkSync(join(root, name), link);
  }
  return { dist, ...(tsc.status === 0 ? {} : { typeErrors: tsc.stdout.split('\n').slice(0, 10).join('\n') }) };
}
