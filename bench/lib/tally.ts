import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compileInto } from '../../scripts/compile.ts';
import { freePort, spawnChild, waitUntilServing, type Child } from './processes.ts';

/** The root key of this run's servers (one per run: a restarted server must open what it sealed). */
const ROOT_KEY = randomBytes(32).toString('base64url');

export const root = resolve(import.meta.dirname, '../..');
/** The benchmark's own compiled copy of src/ (so a concurrent `npm run build` cannot change it mid-run). */
export const buildDir = join(root, 'bench/.build');
export const distDir = join(buildDir, 'dist');
export const workDir = join(root, 'bench/.work');

export const ADMIN_KEY = 'bench-admin-key-0123456789-abcdefghijklmnopqrstuv';

/** Compiles src/ to bench/.build/dist, afresh (scripts/compile.ts). */
export function build(log: (line: string) => void): void {
  log('compiling src/ to bench/.build/dist (tsc)');
  const { typeErrors } = compileInto(buildDir);
  // tsc emits even when others' work in progress has type errors; only a missing entry point is fatal.
  if (typeErrors) log(`tsc reported type errors (emitted anyway):\n${typeErrors}`);
}

export function isBuilt(): boolean {
  return existsSync(join(distDir, 'main.js'));
}

export interface TallyServer {
  url: string;
  port: number;
  child: Child;
  databaseUrl: string;
  dbFile?: string;
  stop(): Promise<number | null>;
}

export interface StartOptions {
  databaseUrl?: string;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  name?: string;
  /** Another compiled tree's dist/ (e.g. a copy of bench/.build/dist from before a change), for A/B runs. */
  dist?: string;
  /** Another node binary (bench/tools/ab-runtimes.ts); `dist` must then sit in a tree whose native modules were built for it. */
  node?: string;
}

/** Starts the compiled server (`node bench/.build/dist/main.js`) on a free port. */
export async function startTally(options: StartOptions = {}): Promise<TallyServer> {
  mkdirSync(workDir, { recursive: true });
  const port = await freePort();
  let dbFile: string | undefined;
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    dbFile = join(workDir, `${options.name ?? 'tally'}.db`);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
    databaseUrl = `file:${dbFile}`;
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // As deployed: production refuses to start without a root key given by the environment.
    NODE_ENV: 'production',
    TALLY_SECRET_KEY: ROOT_KEY,
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    ADMIN_API_KEY: ADMIN_KEY,
    LOG_LEVEL: 'warn',
    NODE_NO_WARNINGS: '1',
    ...options.env,
  };
  delete env.REDIS_URL;
  delete env.ISSUER;
  const child = spawnChild(options.node ?? process.execPath, [...(options.nodeArgs ?? []), join(options.dist ?? distDir, 'main.js')], { cwd: root, env });
  const url = `http://localhost:${port}`;
  await waitUntilServing(`http://127.0.0.1:${port}/healthz`, child);
  return { url, port, child, databaseUrl, ...(dbFile ? { dbFile } : {}), stop: () => child.stop() };
}

export interface Client {
  client_id: string;
  client_secret: string;
  [key: string]: unknown;
}

async function adminCall<T>(server: TallyServer, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${server.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`admin ${method} ${path} answered ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** A confidential service client (client_credentials only) in one token mode. */
export function createServiceClient(server: TallyServer, mode: string, name = `bench ${mode}`, extra: Record<string, unknown> = {}): Promise<Client> {
  return adminCall(server, 'POST', '/clients', {
    client_name: name,
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read',
    token_mode: mode,
    ...extra,
  });
}

/** A confidential web client with the code flow and refresh tokens, in one token mode. */
export function createWebClient(server: TallyServer, mode: string): Promise<Client> {
  return adminCall(server, 'POST', '/clients', {
    client_name: `bench web ${mode}`,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid profile email offline_access api:read',
    token_mode: mode,
    // The bench's code flow sends no code_challenge (PKCE is required of every client unless it opts out).
    require_pkce: false,
  });
}

export async function createUser(server: TallyServer, username: string, password: string): Promise<{ id: string; username: string; password: string }> {
  const user = await adminCall<{ id: string; username: string }>(server, 'POST', '/users', {
    username,
    password,
    email: `${username}@example.com`,
    name: 'Bench User',
  });
  return { ...user, password };
}

/** Requests/s and other counters from the server's Prometheus text, by route. */
export async function introspectionCount(server: TallyServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('tally_http_requests_total{') && line.includes('route="introspection"')) total += Number(line.split(' ').pop());
  }
  return total;
}
