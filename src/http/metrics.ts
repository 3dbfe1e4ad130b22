import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tally_' });
  const requests = new Counter({ name: 'tally_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  const duration = new Histogram({
    name: 'tally_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const tokens = new Counter({ name: 'tally_tokens_issued_total', help: 'Tokens issued by kind and mode', labelNames: ['kind', 'mode'], registers: [registry] });
  const revocations = new Counter({ name: 'tally_revocations_total', help: 'Revocations published, by what they name (token or scope)', labelNames: ['type'], registers: [registry] });

  return {
    registry,
    tokens,
    revocations,
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
