import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SECURITY_EVENTS } from '../config/security-events.js';
import type { CacheStats } from '../lib/cache-stats.js';

/** What /metrics reads from the runtime when it is scraped. */
export interface MetricSources {
  caches: Record<string, CacheStats>;
  pool: () => { total: number; idle: number; waiting: number } | undefined;
}

/** The protocol endpoints by name, so that labels stay few whatever the paths requested. */
const ROUTES: [RegExp, string][] = [
  [/^\/token\/introspection$/, 'introspection'],
  [/^\/token\/revocation$/, 'revocation'],
  [/^\/token$/, 'token'],
  [/^\/auth(\/|$)/, 'authorization'],
  [/^\/me$/, 'userinfo'],
  [/^\/jwks$/, 'jwks'],
  [/^\/\.well-known\/openid-configuration$/, 'discovery'],
  [/^\/device(\/|$)/, 'device'],
  [/^\/session\/end/, 'end_session'],
  [/^\/interaction\//, 'interaction'],
  [/^\/admin(\/|$)/, 'admin'],
  [/^\/revocations\/stream$/, 'revocation_stream'],
  [/^\/(healthz|readyz|metrics)$/, 'operations'],
];

export function routeOf(url: string): string {
  const path = url.split('?')[0]!;
  return ROUTES.find(([pattern]) => pattern.test(path))?.[1] ?? 'other';
}

export function createMetrics(sources: MetricSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tally_' });
  const requests = new Counter({
    name: 'tally_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'tally_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'tally_tokens_issued_total',
    help: 'Tokens issued by kind and mode',
    labelNames: ['kind', 'mode'],
    registers: [registry],
  });
  const tokensRevoked = new Counter({
    name: 'tally_tokens_revoked_total',
    help: 'Tokens revoked, by mode: ledger entries (reference, jwt) made inactive, and stateless tokens revoked one by one (a revocation event covering stateless tokens counts in tally_revocations_total)',
    labelNames: ['mode'],
    registers: [registry],
  });
  const revocations = new Counter({
    name: 'tally_revocations_total',
    help: 'Revocations published, by what they name (token or scope)',
    labelNames: ['type'],
    registers: [registry],
  });
  const protocolAnswers = new Counter({
    name: 'tally_protocol_answers_total',
    help: 'Introspection and token requests by who answered: Tally directly (the common cases), or oidc-provider (everything else)',
    labelNames: ['endpoint', 'answered_by'],
    registers: [registry],
  });
  const directDeclines = new Counter({
    name: 'tally_direct_answer_declines_total',
    help: 'Introspection and token requests a direct answer left to oidc-provider, by endpoint and the reason it gave (the guard that declined)',
    labelNames: ['endpoint', 'reason'],
    registers: [registry],
  });
  const databaseUnavailable = new Counter({
    name: 'tally_database_unavailable_total',
    help: 'Requests refused because the database was unavailable (503 with Retry-After, or temporarily_unavailable sent to the client), by route',
    labelNames: ['route'],
    registers: [registry],
  });
  const securityEvents = new Counter({
    name: 'tally_security_events_total',
    help: 'Security events by name (config/security-events.ts): failed sign-ins, lockouts, failed client and admin authentication, reused refresh tokens, replayed codes, forged tokens, refused overload',
    labelNames: ['event'],
    registers: [registry],
  });
  // Every event starts at 0, so that a rate() over it works before its first occurrence.
  for (const event of Object.keys(SECURITY_EVENTS)) securityEvents.inc({ event }, 0);
  new Counter({
    name: 'tally_cache_lookups_total',
    help: 'In-process cache lookups by cache (client, ledger, revocation: the revoked list and revocation events of stateless access tokens) and result (hit, miss)',
    labelNames: ['cache', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cache, stats] of Object.entries(sources.caches)) {
        this.inc({ cache, result: 'hit' }, stats.hits);
        this.inc({ cache, result: 'miss' }, stats.misses);
      }
    },
  });
  // Only PostgreSQL has a pool; the embedded database has one connection and nothing to report.
  if (sources.pool()) {
    new Gauge({
      name: 'tally_db_pool_connections',
      help: 'Database pool connections by state (in_use, idle) and requests waiting for one (waiting)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const pool = sources.pool()!;
        this.set({ state: 'in_use' }, pool.total - pool.idle);
        this.set({ state: 'idle' }, pool.idle);
        this.set({ state: 'waiting' }, pool.waiting);
      },
    });
  }

  return {
    registry,
    tokens,
    tokensRevoked,
    revocations,
    protocolAnswers,
    directDeclines,
    databaseUnavailable,
    securityEvents,
    /** Counts a request when its response is finished. */
    observe(req: IncomingMessage, res: ServerResponse) {
      const started = process.hrtime.bigint();
      const route = routeOf(req.url ?? '/');
      res.once('finish', () => {
        requests.inc({ route, status: String(res.statusCode) });
        duration.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
      });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
