import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig, NO_SECRET_KEY_WARNING } from '../config/index.js';
import { TallyError } from '../lib/errors.js';
import { findDuplicateKey } from '../lib/duplicate-keys.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { runMigrations } from '../storage/migrate.js';
import { explainDatabaseFailure } from '../storage/database.js';
import { parseNewClient } from '../admin/client-schemas.js';
import { createUser, listUsers, parseNewUser, parseUserFilter, parseUserPatch, resetUserFactors, unlockUser, updateUser } from '../admin/users.js';
import { parsePage } from '../admin/pagination.js';
import { pruneLedger } from '../admin/tokens.js';
import { rotateSigningKeys } from '../admin/keys.js';
import { MAX_PRUNE_AGE_SECONDS } from '../admin/schemas.js';
import { isJsonObject } from '../admin/input.js';

// The commands: each reads its options, then runs the admin layer's operation (src/admin/, shared
// with the admin API, so the same input is refused the same way) and prints what it returns.

export const HELP: Record<string, string> = {
  '': `Usage: tally <command> [options]

Commands:
  migrate                 apply pending database migrations and exit
  users create            create a user (password from standard input)
  users unlock            clear a user's failed sign-ins (ends a lockout)
  users reset-factors     remove a user's second factors (a lost device)
  users list              list or search users
  users update            change a user's email, name, roles, password or disabled state
  clients create          register a client from RFC 7591 metadata
  prune                   delete expired ledger entries in batches
  keys rotate             add new signing keys; older ones stay published until their tokens expire

Every command reads the same environment as the server (DATABASE_URL, ...). Use --help on each.`,
  migrate: 'Usage: tally migrate\n\nApplies pending migrations to DATABASE_URL and prints their names as JSON.',
  'users create':
    "Usage: tally users create --username NAME [--email E] [--name N] [--roles admin,ops] --password-stdin\n\nReads the password from standard input (one trailing newline stripped) and prints the user as JSON. The role admin lets the user's tokens carry scope admin.",
  'users unlock':
    'Usage: tally users unlock --id ID\n\nClears the failed sign-ins of the user with this id (the `sub`), ending a lockout at once. Prints nothing.',
  'users reset-factors':
    'Usage: tally users reset-factors --id ID\n\nRemoves the authenticator and recovery codes of the user with this id (the `sub`), as DELETE /admin/users/{id}/factors does. Prints nothing.',
  'users list':
    'Usage: tally users list [--q TEXT] [--limit N] [--cursor C]\n\nPrints a page of users as JSON ({ items, next_cursor }), oldest first; --q matches a part of the username, email or name, case-insensitively.',
  'users update':
    'Usage: tally users update --id ID [--email E] [--name N] [--roles admin,ops] [--disabled true|false] [--password-stdin]\n\nChanges the user as PATCH /admin/users/{id} does and prints it as JSON. --roles replaces the roles (--roles "" clears them); --disabled true refuses their sign-ins and makes every token of theirs inactive.',
  'clients create': `Usage: tally clients create --json '{"client_name":"...","redirect_uris":[...],...}'\n\nThe body of POST /admin/clients. Prints the client as JSON, with client_secret this once.`,
  'keys rotate': 'Usage: tally keys rotate\n\nAdds an ES256 and an RS256 signing key. New tokens are signed with them; older keys stay in the JWKS.',
  prune:
    'Usage: tally prune [--older-than SECONDS] [--batch-size N] [--limit N]\n\nDeletes ledger entries whose token expired more than SECONDS ago, in batches. Prints what it deleted as JSON.',
};

/** A command line that cannot run: a missing or malformed option. */
export class UsageError extends TallyError {
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
  const config = loadConfig();
  if (config.secretKeys.length === 0) process.stderr.write(`warning: ${NO_SECRET_KEY_WARNING}\n`);
  const runtime = await openRuntime(config, { shortLived: true });
  try {
    return await run(runtime);
  } finally {
    await runtime.close();
  }
}

/** `admin,ops` → ['admin', 'ops']; an empty text is no roles. */
function roleList(text: string): string[] {
  return text
    .split(',')
    .map((role) => role.trim())
    .filter(Boolean);
}

/** An integer option within bounds, or undefined when not given. */
function integerOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

export const commands: Record<string, (args: string[]) => Promise<void>> = {
  async migrate(args) {
    parseArgs({ args, options: {} });
    const { databaseUrl } = loadConfig();
    const applied = await runMigrations(databaseUrl).catch((error: unknown) => {
      throw explainDatabaseFailure(databaseUrl, error);
    });
    print({ applied });
  },

  async 'users create'(args) {
    const { values } = parseArgs({
      args,
      options: {
        username: { type: 'string' },
        email: { type: 'string' },
        name: { type: 'string' },
        roles: { type: 'string' },
        'password-stdin': { type: 'boolean' },
      },
    });
    if (!values.username) throw new UsageError('--username is required');
    if (!values['password-stdin']) throw new UsageError('--password-stdin is required: the password is read from standard input');
    const password = readStdin();
    // Refused before the database is opened.
    const user = parseNewUser({
      username: values.username,
      password,
      ...(values.email !== undefined ? { email: values.email } : {}),
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(values.roles !== undefined ? { roles: roleList(values.roles) } : {}),
    });
    await withRuntime(async (runtime) => print(await createUser(runtime, user)));
  },

  async 'users unlock'(args) {
    const { values } = parseArgs({ args, options: { id: { type: 'string' } } });
    if (!values.id) throw new UsageError('--id is required');
    const id = values.id;
    await withRuntime((runtime) => unlockUser(runtime, id));
  },

  async 'users reset-factors'(args) {
    const { values } = parseArgs({ args, options: { id: { type: 'string' } } });
    if (!values.id) throw new UsageError('--id is required');
    const id = values.id;
    await withRuntime((runtime) => resetUserFactors(runtime, id, 'cli'));
  },

  async 'users list'(args) {
    const { values } = parseArgs({ args, options: { q: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } } });
    const filter = parseUserFilter(values.q !== undefined ? { q: values.q } : {});
    const page = parsePage(values);
    await withRuntime(async (runtime) => print(await listUsers(runtime, filter, page)));
  },

  async 'users update'(args) {
    const { values } = parseArgs({
      args,
      options: {
        id: { type: 'string' },
        email: { type: 'string' },
        name: { type: 'string' },
        roles: { type: 'string' },
        disabled: { type: 'string' },
        'password-stdin': { type: 'boolean' },
      },
    });
    if (!values.id) throw new UsageError('--id is required');
    if (values.disabled !== undefined && values.disabled !== 'true' && values.disabled !== 'false') throw new UsageError('--disabled must be true or false');
    const patch = parseUserPatch({
      ...(values.email !== undefined ? { email: values.email } : {}),
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(values.roles !== undefined ? { roles: roleList(values.roles) } : {}),
      ...(values.disabled !== undefined ? { disabled: values.disabled === 'true' } : {}),
      ...(values['password-stdin'] ? { password: readStdin() } : {}),
    });
    if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give --email, --name, --roles, --disabled or --password-stdin');
    const id = values.id;
    await withRuntime(async (runtime) => print(await updateUser(runtime, id, patch)));
  },

  async 'clients create'(args) {
    const { values } = parseArgs({ args, options: { json: { type: 'string' } } });
    if (!values.json) throw new UsageError('--json is required');
    let input: unknown;
    try {
      input = JSON.parse(values.json);
    } catch {
      throw new UsageError('--json is not valid JSON');
    }
    if (!isJsonObject(input)) throw new UsageError('the client metadata must be a JSON object');
    // As POST /admin/clients: a key given twice is refused, not silently the last one kept.
    const duplicate = findDuplicateKey(values.json);
    if (duplicate) throw new UsageError(`--json names ${duplicate} twice`);
    const metadata = parseNewClient(input);
    // Loaded here only: oidc-provider is needed to check metadata, not by the other commands.
    const { registerClient } = await import('../admin/clients.js');
    await withRuntime(async (runtime) => print(await registerClient(runtime, metadata)));
  },

  async prune(args) {
    const { values } = parseArgs({ args, options: { 'older-than': { type: 'string' }, 'batch-size': { type: 'string' }, limit: { type: 'string' } } });
    const options = {
      olderThanSeconds: integerOption('older-than', values['older-than'], 0, MAX_PRUNE_AGE_SECONDS),
      batchSize: integerOption('batch-size', values['batch-size'], 1, 100_000),
      limit: integerOption('limit', values.limit, 1, Number.MAX_SAFE_INTEGER),
    };
    await withRuntime(async (runtime) => print(await pruneLedger(runtime, options)));
  },

  async 'keys rotate'(args) {
    parseArgs({ args, options: {} }); // no options: refuses any
    await withRuntime(async (runtime) => print(await rotateSigningKeys(runtime)));
  },
};
