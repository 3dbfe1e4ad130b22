import { setFlagsFromString } from 'node:v8';
import { createProvider } from './oidc/provider.js';
import { logEscapedErrors } from './oidc/escaped-errors.js';
import { holdProvider } from './oidc/provider-holder.js';
import { startKeyReload } from './oidc/key-reload.js';
import { closeGracefully, createHttpServer, explainListenFailure } from './http/server.js';
import { renderPage } from './http/views.js';
import { openRuntime } from './runtime.js';
import { loadConfig, NO_SECRET_KEY_WARNING, type Config } from './config/index.js';
import { exitFor } from './cli/exit.js';
import type { Keyring } from './storage/keys.js';
import { followRevocations, pollSecondPasses } from './tokens/revocation/index.js';
import { ensureConsoleClient } from './admin/console-client.js';
import { TallyError } from './lib/errors.js';

// After a full collection V8 lets the old generation grow to as much as four times what survived
// before it collects again. Under load most of that is requests' garbage promoted while in flight
// (the live heap is about 30 MiB): twice is enough, and the server stays 40-60 MiB smaller at no
// measurable cost in CPU (bench/ANALYSIS.md). Set here so that every way of starting the server has it.
setFlagsFromString('--heap-growing-percent=100');

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  exitFor(error); // a bad variable: its message, exit 2
}
// A migration that cannot run is told as a bad variable is (exit 2, its message); other failures throw.
const runtime = await openRuntime(config).catch(exitFor);
const { logger } = runtime;
if (config.secretKeys.length === 0) logger.warn({ variable: 'TALLY_SECRET_KEY' }, NO_SECRET_KEY_WARNING);
if (runtime.appliedMigrations.length) logger.info({ migrations: runtime.appliedMigrations }, 'migrations applied');
const build = (keyring: Keyring) => {
  const provider = createProvider({ ...runtime, keyring, renderPage });
  provider.app.on('error', logEscapedErrors(logger));
  return provider;
};
const providers = holdProvider(build(runtime.keyring));
providers.onProvider((provider) => provider.on('server_error', (_ctx, error) => logger.error({ err: error }, 'oidc-provider server error')));
const stopKeyReload = startKeyReload(runtime, providers, build);

// Only a cache has anything for other processes' revocations to drop.
const { entries, revokedTokens, revocationEvents } = runtime.stores;
const stopFollowingRevocations = entries.enabled
  ? followRevocations({ caches: [entries, revokedTokens, revocationEvents], feed: runtime.revocationFeed, issuer: config.issuer, redis: runtime.redis })
  : () => undefined;

// Bulk revocations' second passes are recorded in the database; every server process runs those due.
const stopSecondPasses = pollSecondPasses(runtime.ledger, logger);

// The admin console's client, as this version of the server needs it (idempotent; see admin/console-client.ts).
// Only once the provider serving requests is built: with this write (and its Redis publish) made before,
// a client changed on another replica stayed stale here (test/postgres.test.ts, two replicas). Building
// a provider first alone does not do that; the cause is not yet understood.
// An issuer its redirect URI cannot use (plain http beyond loopback) leaves the console off, not the server.
const consoleClient = await ensureConsoleClient(runtime).catch((error: unknown) => {
  if (error instanceof TallyError && error.status === 400) return logger.warn({ err: error }, 'admin console unavailable: its client cannot be registered');
  return exitFor(error);
});
if (consoleClient && consoleClient !== 'unchanged') logger.info({ client_id: 'console' }, `admin console client ${consoleClient}`);

const { server, closeStreams } = createHttpServer({ providers, runtime });
// An address that cannot be listened on names the variable at fault, as a bad value does (exit 2).
const refuseAddress = (error: NodeJS.ErrnoException) => exitFor(explainListenFailure(error, config));
server.once('error', refuseAddress);
server.listen(config.port, config.host, () => {
  server.off('error', refuseAddress);
  const lines = [
    `Tally is serving the issuer ${config.issuer}`,
    `  discovery: ${config.issuer}/.well-known/openid-configuration`,
    config.adminApiKey
      ? `  admin API: ${config.issuer}/admin (Authorization: Bearer <ADMIN_API_KEY>)`
      : `  admin API: ${config.issuer}/admin (set ADMIN_API_KEY, or use a token with scope "admin"); CLI: npx tally --help`,
    `  admin console: ${config.issuer}/console (users with the role "admin")`,
    `  listening on ${config.host}:${config.port}${config.tls ? ` (HTTPS${config.tls.ca ? ', client certificates asked for' : ''})` : ''}, database ${config.databaseUrl.startsWith('file:') ? config.databaseUrl : 'postgresql'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
});

// Requests in flight get closeGracefully's 10 s; what is left to close after them (the revocation
// feed, the second passes, database and Redis connections) gets this much more: a dependency that no
// longer answers must not keep the process up after SIGTERM (it exits 0 all the same, saying what it left).
const CLEANUP_MS = 5_000;

async function shutdown(signal: string) {
  logger.info({ signal }, 'shutting down');
  stopKeyReload();
  closeStreams();
  await closeGracefully(server);
  let step = 'the revocation feed';
  const cleanup = (async () => {
    stopFollowingRevocations();
    step = 'the second passes of bulk revocations';
    await stopSecondPasses();
    step = 'the database and Redis connections';
    await runtime.close();
  })();
  const late = setTimeout(() => {
    logger.warn({ event: 'shutdown_incomplete', step }, `shutdown: ${step} did not close within ${CLEANUP_MS / 1000} s; exiting without waiting`);
    process.exit(0);
  }, CLEANUP_MS);
  await cleanup.catch((error: unknown) => logger.warn({ err: error, event: 'shutdown_incomplete', step }, `shutdown: closing ${step} failed`));
  clearTimeout(late);
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
