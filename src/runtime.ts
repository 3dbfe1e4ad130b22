import { pino } from 'pino';
import { EventEmitter } from 'node:events';
import type { Config } from './config/index.js';
import { createLogger, type Logger } from './config/logger.js';
import { createSecurityEvents, type SecurityEvents } from './config/security-events.js';
import { createAuditStore, type AuditStore } from './storage/audit.js';
import { createClientStore, type ClientStore } from './storage/clients.js';
import { openRedisChannels, type RedisChannels } from './storage/redis.js';
import { explainDatabaseFailure, openStorage, type Db } from './storage/database.js';
import type { Sql } from './storage/sql.js';
import { createCacheStats, type CacheStats } from './lib/cache-stats.js';
import { loadKeyring, type Keyring } from './storage/keys.js';
import { runMigrations } from './storage/migrate.js';
import { createUserStore, type UserStore } from './storage/users.js';
import { createFactorStore, type FactorStore } from './storage/factors.js';
import { createLedgerStore } from './storage/ledger.js';
import { withLedgerCache, type CachedLedgerStore } from './storage/ledger-cache.js';
import { createProviderRecordStore, type ProviderRecordStore } from './storage/provider-records.js';
import { createRevocationEventStore, type RevocationEventStore } from './storage/revocation-events.js';
import type { ForgettingCache } from './storage/forgetting-cache.js';
import { withRevocationCaches } from './storage/revocation-cache.js';
import { createRevocationPassStore, type RevocationPassStore } from './storage/revocation-passes.js';
import { createRevokedTokenStore, type RevokedTokenStore } from './storage/revoked-tokens.js';
import { createLedgerManager, type LedgerManager } from './tokens/ledger-manager.js';
import { openRevocation, type RevocationFeed } from './tokens/revocation/index.js';
import { createSealedRecords, type SealedRecords } from './tokens/sealed-records.js';
import { createRevocationFeedStore, type RevocationFeedStore } from './storage/revocation-feed.js';
import { createRedisThrottleCounterStore, createThrottleCounterStore, type ThrottleCounterStore, withFallbackStore } from './storage/throttle-counters.js';
import { createThrottle, type Throttle } from './tokens/throttle.js';
import { createRedisReplayMarkStore, createReplayMarkStore, type ReplayMarkStore } from './storage/replay-marks.js';
import { createStatelessRefreshTokens, type StatelessRefreshTokens } from './tokens/stateless-refresh-tokens.js';
import { createMemoryIssuanceCounter, createRedisIssuanceCounter, type IssuanceCounter } from './storage/issuance-counter.js';

/** What the server and the CLI share: configuration, a migrated database, keys and stores. */
export interface Runtime {
  config: Config;
  logger: Logger;
  db: Db;
  /** Prepared statements on the same database, for the queries of every protocol request. */
  sql: Sql;
  /** Hits and misses of the in-process caches, for /metrics. */
  cacheStats: { client: CacheStats; ledger: CacheStats; revocation: CacheStats };
  keyring: Keyring;
  /** Reads the keys table again (signing keys added, activated or retired), sealing again what an older root key sealed. */
  loadKeyring(): Promise<Keyring>;
  clients: ClientStore;
  users: UserStore;
  /** Users' second factors (TOTP secrets sealed, recovery codes hashed). */
  factors: FactorStore;
  /** The ledger manager: the one judge of whether a token is active; single use, revocation, issuance and the admin API's reads. */
  ledger: LedgerManager;
  /** The ledger manager's revocations, under the name the admin API and the CLI use. */
  revocation: Pick<LedgerManager, 'revokeToken' | 'revokeScope' | 'revokeEntry'>;
  /** oidc-provider's other records (sessions, grants, interactions, ...), sealed. */
  records: SealedRecords;
  /** The stores under the ledger manager and the revocation feed, for pruning and for following other processes' revocations. */
  stores: {
    /** Ledger entries, with live access-token rows cached (see storage/ledger-cache.ts). */
    entries: CachedLedgerStore;
    revokedTokens: RevokedTokenStore & ForgettingCache;
    revocationEvents: RevocationEventStore & ForgettingCache;
    revocationPasses: RevocationPassStore;
    providerRecords: ProviderRecordStore;
    revocationFeed: RevocationFeedStore;
    /** The throttle's counts in the database (used without Redis; pruned either way). */
    throttleCounters: ThrottleCounterStore;
  };
  revocationFeed: RevocationFeed;
  /** One-time marks of DPoP proofs and client assertions (their `jti`): in Redis when REDIS_URL is set, else in the database. */
  replayMarks: ReplayMarkStore;
  /** Throttling of guessing (tokens/throttle.ts), its counts in Redis when REDIS_URL is set, else in the database. */
  throttle: Throttle;
  /** The process's one pair of Redis connections (publisher, subscriber), when REDIS_URL is set. */
  redis: RedisChannels | undefined;
  /**
   * In-process notifications for metrics and the like: `revocation` (a RevocationMessage), `tokens-revoked`
   * ({ mode, count }), `database-unavailable` (an UnavailableNotice: a request refused because the database is unavailable).
   */
  events: EventEmitter;
  /** Security events: a structured warning with an `event` field each, counted on /metrics (SECURITY_EVENT on `events`). */
  security: SecurityEvents;
  /** Closes the database and Redis connections. */
  close(): Promise<void>;
  statelessRefreshTokens: StatelessRefreshTokens;
  /** Stateless access tokens issued per minute, for the admin statistics: in Redis when REDIS_URL is set, else in this process. */
  statelessIssued: IssuanceCounter;
  /** Admin API writes: who did what, when, with what outcome. */
  audit: AuditStore;
  appliedMigrations: string[];
}

/** `shortLived`: a CLI command, not the server (no background checkpoint worker for SQLite). */
export async function openRuntime(config: Config, { shortLived = false } = {}): Promise<Runtime> {
  // A command's standard output is its answer (JSON): its log lines go to standard error.
  const logger = createLogger(config.logLevel, shortLived ? pino.destination(2) : undefined);
  // A database that cannot be opened stops the start with a message for the operator, not a stack.
  const explained = (error: unknown): never => {
    throw explainDatabaseFailure(config.databaseUrl, error);
  };
  const appliedMigrations = await runMigrations(config.databaseUrl).catch(explained);
  const storage = await openStorage({
    databaseUrl: config.databaseUrl,
    poolSize: config.databasePoolSize,
    checkpointWorker: !shortLived,
    onWarning: (message, error) => logger.warn({ err: error }, message),
  }).catch(explained);
  const { db, sql } = storage;
  const loadKeys = () =>
    loadKeyring(db, config.secretKeys, config.keyActivationDelay * 1000, ({ keys, keptRootDeleted }) =>
      logger.info({ keys, keptRootDeleted }, 'stored keys sealed again with the first key of TALLY_SECRET_KEY'),
    );
  const keyring = await loadKeys().catch(explained);
  const redis = config.redisUrl ? await openRedisChannels(config.redisUrl, logger) : undefined;
  // Replicas drop their cached copy of a client changed elsewhere (without Redis: after 5 s; a client's
  // secret is read fresh at each authentication, so a rotation counts at once everywhere).
  const clientsChannel = `tally:clients:${config.issuer}`;
  const cacheStats = { client: createCacheStats(), ledger: createCacheStats(), revocation: createCacheStats() };
  const clients = createClientStore(db, sql, {
    secretKeys: keyring,
    stats: cacheStats.client,
    onChange: (id) => redis?.publish(clientsChannel, id, { timeoutMs: 1000 }),
  });
  redis?.subscribe(clientsChannel, (id) => clients.invalidate(id));
  // Other processes' revocations reach the ledger cache through Redis at once when it is configured,
  // and in any case through the database's revocation feed within its poll interval (200 ms,
  // tokens/revocation/follow.ts): well inside the 2 s in which a revocation must reach every replica,
  // on SQLite and PostgreSQL alike.
  const stores = {
    entries: withLedgerCache(createLedgerStore(db, sql), { stats: cacheStats.ledger }),
    // A stateless access token's revoked-list row and revocation events, under the same rule (revocation-cache.ts).
    ...withRevocationCaches(
      { revokedTokens: createRevokedTokenStore(db, sql), revocationEvents: createRevocationEventStore(db, sql) },
      { stats: cacheStats.revocation },
    ),
    revocationPasses: createRevocationPassStore(db, sql),
    providerRecords: createProviderRecordStore(db, sql),
    revocationFeed: createRevocationFeedStore(db, sql),
    throttleCounters: createThrottleCounterStore(db, sql),
  };
  const events = new EventEmitter();
  const security = createSecurityEvents(logger, events);
  // Redis did not answer: once per outage and store (storage/redis-fallback.ts).
  const sharedStoreFallback = (store: string) => (error: unknown) =>
    security.report('shared_store_fallback', { store, reason: error instanceof Error ? error.message : String(error) });
  // Under one prefix whatever the issuer, as in the database: every server on this Redis counts together.
  const throttle = createThrottle(
    redis
      ? withFallbackStore(createRedisThrottleCounterStore(redis.commands, 'tally:throttle:'), stores.throttleCounters, sharedStoreFallback('throttle_counts'))
      : stores.throttleCounters,
  );
  const replayMarks = redis
    ? createRedisReplayMarkStore(redis.commands, `tally:replay:${config.issuer}:`, createReplayMarkStore(sql), {
        fallback: sharedStoreFallback('one_time_marks'),
        copied: (count) => logger.info({ marks: count }, 'replay marks: Redis answers again; the marks made in the database meanwhile copied to it'),
        copyFailed: (error) => logger.warn({ err: error }, 'replay marks: the marks made in the database not copied to Redis'),
      })
    : createReplayMarkStore(sql);
  const records = createSealedRecords(stores.providerRecords, keyring);
  const { revocation, feed: revocationFeed } = openRevocation({ config, logger, events, redis, stores });
  const ledger = createLedgerManager({ ...stores, config, records, revocation });
  return {
    config,
    logger,
    db,
    sql,
    cacheStats,
    keyring,
    loadKeyring: loadKeys,
    clients,
    users: createUserStore(db, sql),
    factors: createFactorStore(db, sql, keyring),
    ledger,
    revocation: ledger,
    records,
    stores,
    revocationFeed,
    throttle,
    replayMarks,
    redis,
    events,
    security,
    async close() {
      await revocationFeed.close();
      await redis?.close();
      await storage.close();
    },
    statelessRefreshTokens: createStatelessRefreshTokens(keyring),
    statelessIssued: redis
      ? createRedisIssuanceCounter(redis.commands, `tally:stateless-issued:${config.issuer}:`, (error) =>
          logger.warn({ err: error }, 'stateless issuance not counted: Redis does not answer'),
        )
      : createMemoryIssuanceCounter(),
    audit: createAuditStore(db, sql),
    appliedMigrations,
  };
}
