import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import express, { type Request, type Response } from 'express';
import type { ProviderHolder } from '../oidc/provider-holder.js';
import type { Runtime } from '../runtime.js';
import { createAdminRouter } from './admin/index.js';
import { writeProblem } from './admin/problem.js';
import { createCsrf } from './csrf.js';
import { renderAppErrors, writeOAuthError } from './errors.js';
import { appSecurityHeaders, MACHINE_ENDPOINT_POLICY, providerContentSecurityPolicy, providerSecurityHeaders } from './security-headers.js';
import { SCRIPTS, STYLESHEET_PATH, serveScript, serveStylesheet } from './views.js';
import { TallyError } from '../lib/errors.js';
import { ConfigError } from '../config/index.js';
import { createHealthRouter } from './health.js';
import { createInteractionRouter } from './interactions.js';
import { createSignIn } from '../oidc/sign-in.js';
import { createSecondFactors } from '../oidc/second-factors.js';
import { createAccountRouter } from './account.js';
import { createConsoleRouter } from './console.js';
import { createTickets } from './tickets.js';
import { createPasskeys } from '../oidc/passkeys.js';
import { createPasskeyChallenges } from './passkey-challenges.js';
import { createForwardedHeaders } from './forwarded.js';
import { createClientSecrets } from '../oidc/client-secrets.js';
import { SECURITY_EVENT } from '../config/security-events.js';
import { createRevocationStreamRouter } from './revocation-stream.js';
import { readBody } from './body.js';
import { replayRequest } from '../lib/replay-request.js';
import { createMetrics, routeOf, type Metrics } from './metrics.js';
import { isStatelessJti } from '../tokens/token-ids.js';
import { DIRECT_ANSWER_HEADERS } from '../oidc/direct-guards.js';
import { PROVIDER_BODY_LIMIT } from '../oidc/internals/index.js';
import { parseProtocolRequest, pathOf, readsForm } from '../oidc/protocol-request.js';
import { TemporarilyUnavailable } from '../oidc/unavailable.js';
import { createDirectAnswers, directEndpointOf, type DirectEndpoint } from './direct-answers.js';
import { sendAfterPoll } from './send-after-poll.js';
import { answerMalformedHttp, isAdminTarget } from './malformed-http.js';
import { DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, type UnavailableNotice } from '../storage/unavailable.js';

export interface HttpDependencies {
  providers: ProviderHolder;
  runtime: Runtime;
}

/** Paths served by Express; everything else goes straight to oidc-provider (no Express cost). */
const APP_PREFIXES = ['/interaction/', '/account', '/admin', '/healthz', '/readyz', '/metrics', '/revocations/', '/assets/', '/console'];

function isAppPath(url: string): boolean {
  return APP_PREFIXES.some((prefix) => url.startsWith(prefix));
}

export function createApp(deps: HttpDependencies, revocationStream: ReturnType<typeof createRevocationStreamRouter>, metrics: Metrics): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  app.use(appSecurityHeaders);
  const { runtime } = deps;
  const provider = () => deps.providers.current;
  app.use(createHealthRouter(runtime.db));
  app.get(STYLESHEET_PATH, serveStylesheet);
  app.get([...SCRIPTS.keys()], serveScript);
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use('/admin', createAdminRouter({ provider, runtime, revocationStreams: revocationStream.streams }));
  app.use(revocationStream.router);
  const signIn = createSignIn({ users: runtime.users, throttle: runtime.throttle, security: runtime.security });
  const csrf = createCsrf(runtime.keyring.cookieKeys[0]!);
  const tickets = createTickets(runtime.keyring.cookieKeys[0]!);
  const factors = createSecondFactors({ factors: runtime.factors, throttle: runtime.throttle, security: runtime.security, issuer: runtime.config.issuer });
  const passkeys = createPasskeys({ ...runtime, guard: factors.guard, issuer: runtime.config.issuer });
  const challenges = createPasskeyChallenges(tickets);
  app.use(createInteractionRouter({ provider, signIn, users: runtime.users, csrf, factors, passkeys, challenges, tickets }));
  const secureCookies = runtime.config.issuer.startsWith('https:');
  app.use(createAccountRouter({ signIn, users: runtime.users, csrf, factors, passkeys, challenges, tickets, secureCookies }));
  app.use(createConsoleRouter(runtime.config.issuer));

  app.use((_req: Request, _res: Response) => {
    throw new TallyError(404, 'not_found', 'There is nothing here.');
  });
  app.use(renderAppErrors(runtime));
  return app;
}

/**
 * Whether the URL oidc-provider builds from a request parses (a malformed one would fail deep inside it
 * as a 500). Its host and protocol are the issuer's (forwarded.ts), read exactly as Koa's request getters
 * do (koa/lib/request.js); what is left to go wrong is the request target.
 */
function providerCanBuildUrls(req: IncomingMessage): boolean {
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const first = (value: string) => value.split(',', 1)[0]!.trim();
  let host = header('x-forwarded-host') || header('host') || '';
  host = host && first(host);
  if (host.includes('@')) host = URL.canParse(`http://${host}`) ? new URL(`http://${host}`).host : '';
  const proto = header('x-forwarded-proto');
  const protocol = proto ? first(proto).toLowerCase() : 'http';
  return URL.canParse(`${protocol}://${host}${req.url ?? '/'}`);
}

/** RFC 9112 §3.2: a request with more than one Host line is refused, whoever would serve it. */
function hasRepeatedHost(req: IncomingMessage): boolean {
  let seen = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host' && ++seen > 1) return true;
  return false;
}

/** A refusal written before any router sees the request: a problem under /admin, the OAuth shape elsewhere. */
function refuseRequest(req: IncomingMessage, res: ServerResponse, status: number, description: string) {
  const write = isAdminTarget(req.url ?? '') ? writeProblem : writeOAuthError;
  write(res, new TallyError(status, 'invalid_request', description), { connection: 'close' });
}

function rejectOversizedBody(res: ServerResponse) {
  writeOAuthError(res, new TallyError(413, 'invalid_request', 'the request body is larger than 56 KiB'), { connection: 'close' });
}

/** helmet's headers (but the policy) are the same on every response here: work them out once, not per request. */
function precompute(middleware: (req: IncomingMessage, res: ServerResponse, next: () => void) => void): [string, string][] {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  middleware({ headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, () => undefined);
  return headers;
}

/**
 * Why the server could not listen, naming the variable at fault: a port taken or not allowed (PORT), an
 * address that is not this machine's (HOST); anything else is passed on as it is.
 */
export function explainListenFailure(error: NodeJS.ErrnoException, { host, port }: { host: string; port: number }): unknown {
  const where = `${host}:${port}`;
  if (error.code === 'EADDRINUSE') return new ConfigError(`Invalid environment variable PORT=${JSON.stringify(String(port))}: ${where} is already in use`);
  if (error.code === 'EACCES') return new ConfigError(`Invalid environment variable PORT=${JSON.stringify(String(port))}: not allowed to listen on ${where}`);
  if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN')
    return new ConfigError(`Invalid environment variable HOST=${JSON.stringify(host)}: cannot listen on ${where} (${error.code})`);
  return error;
}

/**
 * HTTPS with TLS_CERT_FILE and TLS_KEY_FILE (read once at start, config/tls.ts). With
 * TLS_CLIENT_CA_FILE the handshake asks for a client certificate but lets a client without one (or with
 * one the CAs did not sign) through: endpoints that need none still answer it, and whether a certificate
 * counts is judged per request (protocol/client-certificate.ts, oidc/mtls.ts).
 */
function listenerFor(tls: Runtime['config']['tls'], handler: RequestListener): Server {
  if (!tls) return createServer(handler);
  const options: ServerOptions = { cert: tls.cert, key: tls.key };
  if (tls.ca) Object.assign(options, { ca: tls.ca, requestCert: true, rejectUnauthorized: false });
  return createHttpsServer(options, handler);
}

/** One node:http (or node:https) server: Express for Tally's own routes, oidc-provider's Koa callback for the rest. */
export function createHttpServer(deps: HttpDependencies): { server: Server; closeStreams(): void } {
  const { runtime } = deps;
  // Every client-secret comparison outside oidc-provider's (the direct answers, the stream), behind the same throttle.
  const secrets = createClientSecrets(runtime.clients, { throttle: runtime.throttle, security: runtime.security });
  const revocationStream = createRevocationStreamRouter({ provider: () => deps.providers.current, feed: runtime.revocationFeed, secrets });
  const metrics = createMetrics({
    caches: { client: runtime.cacheStats.client, ledger: runtime.cacheStats.ledger, revocation: runtime.cacheStats.revocation },
    pool: () => runtime.sql.poolStats(),
  });
  deps.runtime.events.on('revocation', (message: { type: string }) => metrics.revocations.inc({ type: message.type }));
  deps.runtime.events.on(SECURITY_EVENT, ({ event }: { event: string }) => metrics.securityEvents.inc({ event }));
  deps.runtime.events.on('tokens-revoked', ({ mode, count }: { mode: string; count: number }) => metrics.tokensRevoked.inc({ mode }, count));
  // Every surface reports a request refused for a database outage here, once: one log line, one count.
  deps.runtime.events.on(DATABASE_UNAVAILABLE, ({ path, error }: UnavailableNotice) => {
    const route = routeOf(path);
    metrics.databaseUnavailable.inc({ route });
    const err = error instanceof TemporarilyUnavailable ? error.cause : error;
    runtime.logger.warn({ event: 'database_unavailable', route, path, err }, 'database unavailable: request refused as temporarily unavailable');
  });
  deps.providers.onProvider((provider) => {
    const events = provider as unknown as NodeJS.EventEmitter;
    for (const kind of ['access_token', 'client_credentials', 'refresh_token', 'authorization_code', 'device_code']) {
      const count = (token: { jti: string; format?: string }) =>
        metrics.tokens.inc({ kind, mode: isStatelessJti(token.jti) ? 'stateless' : token.format === 'jwt' ? 'jwt' : 'reference' });
      events.on(`${kind}.saved`, count);
      events.on(`${kind}.issued`, count);
    }
  });
  const answerDirectly = createDirectAnswers({
    providers: deps.providers,
    secrets,
    metrics,
    events: runtime.events,
    logger: runtime.logger,
  });
  const app = createApp(deps, revocationStream, metrics);
  const providerHeaders = precompute(providerSecurityHeaders);
  const setProviderHeaders = (res: ServerResponse, policy: string) => {
    for (const [name, value] of providerHeaders) res.setHeader(name, value);
    res.setHeader('content-security-policy', policy);
  };
  // A direct answer's header lines, all but its length, handed to writeHead in one array (no setHeader each).
  const directHeaderLines = [...providerHeaders.flat(), 'content-security-policy', MACHINE_ENDPOINT_POLICY, ...Object.entries(DIRECT_ANSWER_HEADERS).flat()];

  /**
   * Reads the body (once, under oidc-provider's own limit) and, at the token, introspection and
   * revocation endpoints, parses its form (once: oidc/protocol-request.ts, the JWT mark included).
   * Then answers: here, when a direct answer covers the request; else oidc-provider, handed the body.
   * At those endpoints the security headers are set here, on the way out (MACHINE_ENDPOINT_POLICY).
   */
  async function readThenAnswer(req: IncomingMessage, res: ServerResponse, path: string, endpoint: DirectEndpoint | undefined) {
    const form = readsForm(req.method, path);
    const body = await readBody(req, PROVIDER_BODY_LIMIT);
    if (form && !(body && endpoint)) setProviderHeaders(res, MACHINE_ENDPOINT_POLICY);
    if (!body) {
      rejectOversizedBody(res);
      return;
    }
    if (!form) {
      deps.providers.handle(replayRequest(req, body), res);
      return;
    }
    const request = parseProtocolRequest(path, req.headers, body);
    const reply = endpoint && (await answerDirectly(endpoint, request, req.url ?? ''));
    if (!reply) {
      if (endpoint) setProviderHeaders(res, MACHINE_ENDPOINT_POLICY);
      deps.providers.handle(replayRequest(req, request.body), res);
      return;
    }
    const json = JSON.stringify(reply.body);
    const lines = [...directHeaderLines, 'content-length', String(Buffer.byteLength(json))];
    if (reply.status === 503) lines.push('retry-after', String(RETRY_AFTER_SECONDS));
    sendAfterPoll(res, reply.status, lines, json);
  }

  const trustedOrigin = createForwardedHeaders(runtime.config);
  const server = listenerFor(runtime.config.tls, (req: IncomingMessage, res: ServerResponse) => {
    metrics.observe(req, res);
    if (hasRepeatedHost(req)) {
      refuseRequest(req, res, 400, 'the request has more than one Host header');
      return;
    }
    trustedOrigin(req);
    if (isAppPath(req.url ?? '/')) {
      app(req, res);
      return;
    }
    if (Number(req.headers['content-length'] ?? 0) > PROVIDER_BODY_LIMIT) {
      // Drained first (when small enough), so that a client still sending reads the 413.
      void readBody(req, PROVIDER_BODY_LIMIT).then(
        () => rejectOversizedBody(res),
        () => undefined,
      );
      return;
    }
    const url = req.url ?? '/';
    const path = pathOf(url);
    const form = readsForm(req.method, path);
    // The form endpoints' headers are set by readThenAnswer (a direct answer writes them in one go).
    if (!form) setProviderHeaders(res, providerContentSecurityPolicy(res));
    if (!providerCanBuildUrls(req)) {
      if (form) setProviderHeaders(res, MACHINE_ENDPOINT_POLICY);
      refuseRequest(req, res, 400, 'the request target does not form a URL');
      return;
    }
    // A chunked body declares no length to refuse it by: it is read here too, under the same limit.
    const chunked = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined;
    if (chunked || form) {
      readThenAnswer(req, res, path, directEndpointOf(req.method, url)).catch(() => res.destroy());
      return;
    }
    deps.providers.handle(req, res);
  });
  server.on('clientError', (error, socket) => answerMalformedHttp(error, socket, deps.runtime.security));
  server.keepAliveTimeout = 65_000;
  return { server, closeStreams: revocationStream.closeAll };
}

/** Stops accepting connections, lets in-flight requests finish, then resolves. */
export function closeGracefully(server: Server, timeoutMs = 10_000): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      done();
    }, timeoutMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      done();
    });
    server.closeIdleConnections();
  });
}
