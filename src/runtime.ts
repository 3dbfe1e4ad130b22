import { EventEmitter } from 'node:events';
import type { Config } from './config/index.js';
import { createLogger, type Logger } from './config/logger.js';
import { createAuditStore, type AuditStore } from './storage/audit.js';
import { createClientStore, type ClientStore } from './storage/clients.js';
import { createRedisBus } from './storage/redis-bus.js';
import { openStorage, type Db } from './storage/database.js';
import type { Sql } from './storage/sql.js';
import { createCacheStats, type CacheStats } from './lib/cache-stats.js';
import { loadKeyring, type Keyring } from './storage/keys.js';
import { runMigrations } from './storage/migrate.js';
import { createUserStore, type UserStore } from './storage/users.js';
import { createLedgerStore } from './storage/ledger.js';
import { withLedgerCache, type CachedLedgerStore } from './storage/ledger-cache.js';
import { createRevocationStore, type RevocationStore } from './storage/revocations.js';
import { createRevocation, type Revocation } from './tokens/revocation.js';
import { createRevocationFeedStore, type RevocationFeedStore } from './storage/revocation-feed.js';
import { createRevocationFeed, type RevocationFeed } from './tokens/revocation-feed.js';
import { createStatelessRefreshTokens, type StatelessRefreshTokens } from './tokens/stateless-refresh-tokens.js';

/** What the server and the CLI share: configuration, a migrated database, keys and stores. */
export interface Runtime {
  config: Config;
  logger: Logger;
  db: Db;
  /** Prepared statements on the same database, for the queries of every protocol request. */
  sql: Sql;
  /** Hits and misses of the in-process caches, for /metrics. */
  cacheStats: { client: CacheStats; clientSecret: CacheStats; ledger: CacheStats };
  keyring: Keyring;
  clients: ClientStore;
  users: UserStore;
  /** The ledger, with live access-token rows cached (see storage/ledger-cache.ts). */
  ledger: CachedLedgerStore;
  revocations: RevocationStore;
  revocation: Revocation;
  revocationFeed: RevocationFeed;
  revocationFeedStore: RevocationFeedStore;
  /**
   * In-process notifications for metrics and the like: `revocation` (a RevocationMessage), `tokens-revoked`
   * ({ mode, count }), `database-unavailable` (an UnavailableNotice: a request refused because the database is unavailable).
   */
  events: EventEmitter;
  /** Closes the database and Redis connections. */
  close(): Promise<void>;
  statelessRefreshTokens: StatelessRefreshTokens;
  /** Admin API writes: who did what, when, with what outcome. */
  audit: AuditStore;
  appliedMigrations: string[];
}

/** `shortLived`: a CLI command, not the server (no background checkpoint worker for SQLite). */
export async function openRuntime(config: Config, { shortLived = false } = {}): Promise<Runtime> {
  const logger = createLogger(config.logLevel);
  const appliedMigrations = await runMigrations(config.databaseUrl);
  const storage = await openStorage({
    databaseUrl: config.databaseUrl,
    poolSize: config.databasePoolSize,
    checkpointWorker: !shortLived,
    onWarning: (message, error) => logger.warn({ err: error }, message),
  });
  const { db, sql } = storage;
  const keyring = await loadKeyring(db, config.secretKey, config.keyActivationDelay * 1000);
  // Replicas drop their cached copy of a client changed elsewhere (without Redis: after 5 s).
  const clientBus = config.redisUrl ? createRedisBus(config.redisUrl, `tally:clients:${config.issuer}`, logger) : undefined;
  const cacheStats = { client: createCacheStats(), clientSecret: createCacheStats(), ledger: createCacheStats() };
  const clients = createClientStore(db, sql, { stats: cacheStats.client, onChange: (id) => clientBus?.publish(id) });
  clientBus?.subscribe((id) => clients.invalidate(id));
  // Other replicas' revocations reach the ledger cache through Redis (and, within the revocation feed's
  // poll interval, through the database; see tokens/ledger-invalidation.ts). PostgreSQL replicas
  // without Redis could not tell each other at once, so there the cache is off.
  const ledgerCache = sql.dialect === 'sqlite' || config.redisUrl !== undefined;
  const ledger = withLedgerCache(createLedgerStore(db, sql), { stats: cacheStats.ledger, max: ledgerCache ? 10_000 : 0 });
  const revocations = createRevocationStore(db, sql);
  const events = new EventEmitter();
  const revocationFeedStore = createRevocationFeedStore(db, sql);
  const revocationFeed = createRevocationFeed({ store: revocationFeedStore, issuer: config.issuer, redisUrl: config.redisUrl, logger });
  const revocation = createRevocation({
    ledger,
    revocations,
    config,
    publish: (message) => {
      events.emit('revocation', message);
      return revocationFeed.publish(message).catch((error: unknown) => logger.error({ err: error }, 'revocation not published'));
    },
    counted: (mode, count) => events.emit('tokens-revoked', { mode, count }),
  });
  return {
    config,
    logger,
    db,
    sql,
    cacheStats,
    keyring,
    clients,
    users: createUserStore(db, sql),
    ledger,
    revocations,
    revocation,
    revocationFeed,
    revocationFeedStore,
    events,
    async close() {
      await revocationFeed.close();
      await clientBus?.close();
      await storage.close();
    },
    statelessRefreshTokens: createStatelessRefreshTokens(keyring),
    audit: createAuditStore(db),
    appliedMigrations,
  };
}
