#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { TallyError } from '../lib/errors.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { runMigrations } from '../storage/migrate.js';
import { addSigningKeys } from '../storage/keys.js';
import { prune } from '../tokens/prune.js';
import { findDuplicateKey } from '../http/admin/json-body.js';
import { createUserBody, MAX_PRUNE_AGE_SECONDS, parseInput } from '../http/admin/schemas.js';

const HELP: Record<string, string> = {
  '': `Usage: tally <command> [options]

Commands:
  migrate                 apply pending database migrations and exit
  users create            create a user (password from standard input)
  clients create          register a client from RFC 7591 metadata
  prune                   delete expired ledger entries in batches
  keys rotate             add new signing keys; older ones stay published until their tokens expire

Every command reads the same environment as the server (DATABASE_URL, ...). Use --help on each.`,
  migrate: 'Usage: tally migrate\n\nApplies pending migrations to DATABASE_URL and prints their names as JSON.',
  'users create': 'Usage: tally users create --username NAME [--email E] [--name N] --password-stdin\n\nReads the password from standard input (one trailing newline stripped) and prints the user as JSON.',
  'clients create': `Usage: tally clients create --json '{"client_name":"...","redirect_uris":[...],...}'\n\nThe body of POST /admin/clients. Prints the client as JSON, with client_secret this once.`,
  'keys rotate': 'Usage: tally keys rotate\n\nAdds an ES256 and an RS256 signing key. New tokens are signed with them; older keys stay in the JWKS.',
  prune: 'Usage: tally prune [--older-than SECONDS] [--batch-size N] [--limit N]\n\nDeletes ledger entries whose token expired more than SECONDS ago, in batches. Prints what it deleted as JSON.',
};

/** A command line that cannot run: a missing or malformed option. */
class UsageError extends TallyError {
  constructor(message: string) {
    super(400, 'usage', message);
  }
}

function print(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function readStdin(): string {
  return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
}

async function withRuntime<T>(run: (runtime: Runtime) => Promise<T>): Promise<T> {
  const runtime = await openRuntime(loadConfig(), { shortLived: true });
  try {
    return await run(runtime);
  } finally {
    await runtime.close();
  }
}

const commands: Record<string, (args: string[]) => Promise<void>> = {
  async migrate(args) {
    parseArgs({ args, options: {} });
    const config = loadConfig();
    print({ applied: await runMigrations(config.databaseUrl) });
  },

  async 'users create'(args) {
    const { values } = parseArgs({ args, options: { username: { type: 'string' }, email: { type: 'string' }, name: { type: 'string' }, 'password-stdin': { type: 'boolean' } } });
    if (!values.username) throw new UsageError('--username is required');
    if (!values['password-stdin']) throw new UsageError('--password-stdin is required: the password is read from standard input');
    const password = readStdin();
    // The same rules as POST /admin/users.
    const user = parseInput(createUserBody, { username: values.username, password, ...(values.email !== undefined ? { email: values.email } : {}), ...(values.name !== undefined ? { name: values.name } : {}) });
    await withRuntime(async ({ users }) => print(await users.create(user)));
  },

  async 'clients create'(args) {
    const { values } = parseArgs({ args, options: { json: { type: 'string' } } });
    if (!values.json) throw new UsageError('--json is required');
    let metadata: unknown;
    try {
      metadata = JSON.parse(values.json);
    } catch {
      throw new UsageError('--json is not valid JSON');
    }
    // As POST /admin/clients: a key given twice is refused, not silently the last one kept.
    const duplicate = findDuplicateKey(values.json);
    if (duplicate) throw new UsageError(`--json names ${duplicate} twice`);
    // Loaded here only: oidc-provider is needed to validate metadata, not by the other commands.
    const { registerClient } = await import('../oidc/clients.js');
    await withRuntime(async (runtime) => print(await registerClient(runtime, metadata)));
  },

  async prune(args) {
    const { values } = parseArgs({ args, options: { 'older-than': { type: 'string' }, 'batch-size': { type: 'string' }, limit: { type: 'string' } } });
    const number = (name: string, value: string | undefined, min: number, max: number) => {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
      return n;
    };
    const options = {
      olderThanSeconds: number('older-than', values['older-than'], 0, MAX_PRUNE_AGE_SECONDS),
      batchSize: number('batch-size', values['batch-size'], 1, 100_000),
      limit: number('limit', values.limit, 1, Number.MAX_SAFE_INTEGER),
    };
    await withRuntime(async (runtime) => print(await prune(runtime, options)));
  },

  async 'keys rotate'(args) {
    parseArgs({ args, options: {} }); // no options: refuses any
    const config = loadConfig();
    // Old keys stay published while a token they signed may live: ID tokens and access tokens.
    const retireAfterMs = (config.keyActivationDelay + Math.max(config.accessTokenTtl, 3600)) * 1000;
    await withRuntime(async ({ db, config }) => print({ added: await addSigningKeys(db, config.secretKey, retireAfterMs), previous_keys_retire_at: new Date(Date.now() + retireAfterMs).toISOString() }));
  },
};

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
