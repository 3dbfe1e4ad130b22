// The bad-input campaign: a table of malformed requests, generated per endpoint family and per kind of
// malformation, run with bounded concurrency against one server (SQLite or PostgreSQL, as the pass
// says). Every case must be answered within CASE_TIMEOUT_MS, never with a 5xx, and in the shape of its
// protocol: RFC 6749 JSON at the OAuth endpoints, RFC 9457 problems under /admin, a 4xx HTML page for
// people, and for malformed HTTP on a raw socket a well-formed 4xx status line or a connection the
// server closes. A seeded mutation pass then bends valid requests a few hundred ways. Afterwards the
// server is the same healthy process, and the tokens issued before the campaign are still active.
// One test per family; each reports every failing case at once.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ADMIN_KEY, registerClient, registerUser } from './helpers/admin.ts';
import { Browser, parseForms } from './helpers/browser.ts';
import { REDIRECT_URI, type RegisteredClient } from './helpers/fixtures.ts';
import { codeFlow, discover } from './helpers/oauth.ts';
import { startServer, testDialect, type TestServer } from './helpers/server.ts';

const CASE_TIMEOUT_MS = 5_000;
const CONCURRENCY = 8;
/** The mutation pass's seed: the same seed, the same mutations. */
const SEED = 0x7a11ec;
const MODES = ['reference', 'jwt', 'stateless'] as const;
type Mode = (typeof MODES)[number];

// ---------------------------------------------------------------------------------------------------
// Requests, answers and checks

type HeaderMap = Record<string, string | string[] | undefined>;

interface HttpRequest {
  method: string;
  path: string;
  headers?: HeaderMap;
  body?: string | Buffer;
  /** Sent with Transfer-Encoding: chunked, one chunk each. */
  chunks?: (string | Buffer)[];
}

interface RawRequest {
  /** The bytes written on a new connection, exactly. */
  raw: string | Buffer;
  /** How many complete answers to wait for (pipelining); the connection closing ends the wait too. */
  responses?: number;
}

type Request = HttpRequest | RawRequest;

interface HttpAnswer {
  kind: 'http';
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  ms: number;
  timedOut: boolean;
  error?: string;
}

interface RawResponse {
  statusLine: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface RawAnswer {
  kind: 'raw';
  responses: RawResponse[];
  /** Bytes received that are not a complete answer. */
  leftover: string;
  closed: boolean;
  timedOut: boolean;
  ms: number;
  error?: string;
}

type Answer = HttpAnswer | RawAnswer;
/** A reason the answer is wrong, or undefined. */
type Check = (answer: HttpAnswer) => string | undefined;
type RawCheck = (answer: RawAnswer) => string | undefined;

interface Case {
  name: string;
  /** The request, or how to make it (after setting up a session, say): made before any case of the family is sent. */
  request: Request | (() => Promise<Request>);
  expect: Check | RawCheck;
  raw?: boolean;
}

const isRaw = (request: Request): request is RawRequest => 'raw' in request;

let port = 0;

let sent = 0;
const nextAddress = () => {
  const n = ++sent;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

function sendHttp(r: HttpRequest): Promise<HttpAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let partial: { status: number; headers: IncomingHttpHeaders } = { status: 0, headers: {} };
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (extra: { timedOut?: boolean; error?: string } = {}) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ kind: 'http', ...partial, text, ms: Date.now() - started, timedOut: extra.timedOut ?? false, error: extra.error });
    };
    // Each case from its own client address (the server trusts loopback as a proxy), so that the cases
    // with wrong secrets do not throttle the fixture clients for the ones after them.
    const headers: Record<string, string | string[]> = { host: `localhost:${port}`, 'x-forwarded-for': nextAddress() };
    for (const [name, value] of Object.entries(r.headers ?? {})) if (value !== undefined) headers[name] = value;
    let request: ReturnType<typeof httpRequest>;
    try {
      request = httpRequest({ host: '127.0.0.1', port, method: r.method, path: r.path, agent: false, headers }, onResponse);
    } catch (error) {
      resolve({ kind: 'http', status: 0, headers: {}, text: '', ms: 0, timedOut: false, error: `the request could not be sent: ${(error as Error).message}` });
      return;
    }
    function onResponse(response: import('node:http').IncomingMessage) {
      partial = { status: response.statusCode ?? 0, headers: response.headers };
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 1024 * 1024) chunks.push(chunk);
      });
      response.on('end', () => done());
      // A connection reset after the status line is the server closing on a refusal: the status is the answer.
      response.on('error', () => done());
      // An event stream does not end: what it says in its first moments is the answer.
      if (/^text\/event-stream/i.test(String(response.headers['content-type'] ?? ''))) {
        setTimeout(() => {
          done();
          response.destroy();
        }, 300);
      }
    }
    const timer = setTimeout(() => {
      done({ timedOut: true });
      request.destroy();
    }, CASE_TIMEOUT_MS);
    request.on('error', (error: NodeJS.ErrnoException) => done(partial.status ? {} : { error: `${error.code ?? ''} ${error.message}`.trim() }));
    if (r.chunks) {
      for (const chunk of r.chunks) request.write(chunk);
      request.end();
    } else request.end(r.body);
  });
}

/** The complete HTTP/1.1 answers in `data` (chunked and Content-Length framing; to the close otherwise). */
function parseResponses(data: Buffer, closed: boolean): { responses: RawResponse[]; leftover: string } {
  const responses: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const [statusLine = '', ...lines] = data.subarray(at, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const bodyStart = headEnd + 4;
    if (status >= 100 && status < 200) {
      at = bodyStart;
      continue;
    }
    let end: number | undefined;
    let body = '';
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const chunkSize = parseInt(data.subarray(p, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(chunkSize)) break;
        if (chunkSize === 0) {
          const last = data.indexOf('\r\n\r\n', lineEnd);
          if (last >= 0) end = last + 4;
          break;
        }
        if (data.length < lineEnd + 2 + chunkSize + 2) break;
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + chunkSize));
        p = lineEnd + 2 + chunkSize + 2;
      }
      body = Buffer.concat(parts).toString('utf8');
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (data.length >= bodyStart + length) {
        end = bodyStart + length;
        body = data.subarray(bodyStart, end).toString('utf8');
      }
    } else if (status === 204 || status === 304) {
      end = bodyStart;
    } else if (closed) {
      end = data.length;
      body = data.subarray(bodyStart).toString('utf8');
    }
    if (end === undefined) break;
    responses.push({ statusLine, status, headers, body });
    at = end;
  }
  return { responses, leftover: data.subarray(at).toString('latin1') };
}

function sendRaw(r: RawRequest): Promise<RawAnswer> {
  const started = Date.now();
  const wanted = r.responses ?? 1;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let closed = false;
    let settled = false;
    const finish = (timedOut: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ kind: 'raw', ...parseResponses(data, closed), closed, timedOut, ms: Date.now() - started, error });
    };
    const timer = setTimeout(() => finish(true), CASE_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (parseResponses(data, false).responses.length >= wanted) finish(false);
    });
    socket.on('close', () => {
      closed = true;
      finish(false);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset is the server closing on us.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') closed = true;
      else finish(false, error.message);
    });
    socket.write(r.raw);
  });
}

const contentType = (a: HttpAnswer) => String(a.headers['content-type'] ?? '(none)');

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const oneOf = <T>(value: T, allowed: T | T[] | undefined) => allowed === undefined || [allowed].flat().includes(value);

/** Timeouts, transport errors and 5xx fail whatever the case expects. */
function basics(a: Answer): string | undefined {
  if (a.kind === 'raw') {
    if (a.timedOut) return `no complete answer within ${CASE_TIMEOUT_MS} ms and the connection still open`;
    if (a.error) return `socket error: ${a.error}`;
    return undefined;
  }
  if (a.timedOut && a.status) return `status ${a.status} sent, but the answer did not end within ${CASE_TIMEOUT_MS} ms`;
  if (a.timedOut) return `no answer within ${CASE_TIMEOUT_MS} ms`;
  if (a.error) return `transport error: ${a.error}`;
  if (a.status >= 500) return `status ${a.status}`;
  return undefined;
}

function fourXX(a: HttpAnswer, status?: number | number[]): string | undefined {
  if (a.status < 400 || a.status > 499) return `status ${a.status}, expected 4xx`;
  if (!oneOf(a.status, status)) return `status ${a.status}, expected ${[status].flat().join(' or ')}`;
  return undefined;
}

/** RFC 6749 §5.2: a 4xx with a JSON object holding a string `error`. */
const oauth =
  (o: { status?: number | number[]; error?: string | string[]; wwwAuthenticate?: boolean } = {}): Check =>
  (a) => {
    const wrong = fourXX(a, o.status);
    if (wrong) return wrong;
    if (!/^application\/json\b/i.test(contentType(a))) return `content-type ${contentType(a)}, expected application/json`;
    const body = parseJson(a.text);
    if (typeof body?.error !== 'string' || !body.error) return 'no string "error" in the body';
    if (body.error_description !== undefined && typeof body.error_description !== 'string') return 'error_description is not a string';
    if (!oneOf(body.error, o.error)) return `error "${body.error}", expected ${[o.error].flat().join(' or ')}`;
    if (o.wwwAuthenticate && a.status === 401 && !a.headers['www-authenticate']) return '401 without WWW-Authenticate';
    return undefined;
  };

/** RFC 9457 with Tally's stable `code` (and `field`, when one is named). */
const problem =
  (o: { status?: number | number[]; code?: string; field?: string } = {}): Check =>
  (a) => {
    const wrong = fourXX(a, o.status);
    if (wrong) return wrong;
    if (!/^application\/problem\+json\b/i.test(contentType(a))) return `content-type ${contentType(a)}, expected application/problem+json`;
    const body = parseJson(a.text);
    if (!body || typeof body !== 'object') return 'the body is not a JSON object';
    for (const key of ['type', 'title', 'detail', 'code']) if (typeof body[key] !== 'string' || !body[key]) return `no string "${key}" in the problem`;
    if (body.status !== a.status) return `"status" ${body.status} differs from the HTTP status ${a.status}`;
    if (o.code && body.code !== o.code) return `code "${body.code}", expected "${o.code}"`;
    const named = body.field === o.field || String(body.detail).includes(o.field ?? '');
    if (o.field && a.status === 400 && !named) return `the problem does not name the field "${o.field}"`;
    return undefined;
  };

const isHtml = (a: HttpAnswer) => /^text\/html\b/i.test(contentType(a)) && /<html|<!doctype html/i.test(a.text);

/** A readable HTML page with a 4xx status. */
const page =
  (o: { status?: number | number[] } = {}): Check =>
  (a) =>
    fourXX(a, o.status) ?? (isHtml(a) ? undefined : `content-type ${contentType(a)}, expected a text/html page`);

/** A page shown again with a visible error (a wrong password, a wrong device code): 200 or 4xx. */
const pageWithError =
  (o: { status?: number | number[] } = {}): Check =>
  (a) => {
    if (a.status !== 200 && (a.status < 400 || a.status > 499)) return `status ${a.status}, expected 200 or 4xx`;
    if (!oneOf(a.status, o.status)) return `status ${a.status}, expected ${[o.status].flat().join(' or ')}`;
    if (!isHtml(a)) return `content-type ${contentType(a)}, expected a text/html page`;
    if (!/role="alert"/.test(a.text)) return 'the page shows no error (no role="alert")';
    return undefined;
  };

/** RFC 6749 §4.1.2.1: an error sent back to the registered redirect URI (or a page when it cannot be trusted). */
const redirectError: Check = (a) => {
  if (![302, 303].includes(a.status)) return `status ${a.status}, expected a redirect with an error`;
  const location = String(a.headers.location ?? '');
  if (!location.startsWith(REDIRECT_URI)) return `redirects to ${location.slice(0, 120)}, not the registered redirect URI`;
  const url = new URL(location);
  if (!url.searchParams.get('error') && !new URLSearchParams(url.hash.slice(1)).get('error')) return `redirect without an error: ${location.slice(0, 160)}`;
  return undefined;
};

const anyOf =
  (...checks: Check[]): Check =>
  (a) => {
    const reasons = checks.map((check) => check(a));
    return reasons.includes(undefined) ? undefined : reasons.join('; or: ');
  };

const authError = anyOf(page(), redirectError);

/** RFC 7662: an unknown, malformed or foreign token is `{"active": false}`. */
const inactive: Check = (a) => {
  if (a.status !== 200) return `status ${a.status}, expected 200 {"active":false}`;
  const body = parseJson(a.text);
  return body?.active === false ? undefined : `expected {"active":false}, got ${a.text.slice(0, 120)}`;
};

/** RFC 7009 §2.2: an invalid token is answered 200 all the same. */
const revocationOk: Check = (a) => (a.status === 200 ? undefined : `status ${a.status}, expected 200`);

/** A 2xx judged by `ok`, anything else by `error`. */
const okOr =
  (error: Check, ok: Check): Check =>
  (a) =>
    a.status >= 200 && a.status < 300 ? ok(a) : error(a);

const jsonWith =
  (what: string, test: (body: any) => boolean): Check =>
  (a) =>
    /json/i.test(contentType(a)) && test(parseJson(a.text)) ? undefined : `2xx without ${what}: ${contentType(a)} ${a.text.slice(0, 120)}`;

/** A discovery document naming only the issuer's URLs, nothing of a forged Host or forwarded header. */
const ownUrls = jsonWith("the issuer's own URLs", (b) => typeof b?.issuer === 'string' && !/evil|a b|\[::|,,,|ht tp/.test(JSON.stringify(b)));

/**
 * Raw-socket answers: every status line well formed, none 5xx; by default the answer is a 4xx, or the
 * server closed the connection without one (node refusing what its parser rejects).
 */
const rawAnswer =
  (o: { statuses?: number[]; shape?: Check; mustAnswer?: boolean } = {}): RawCheck =>
  (a) => {
    for (const r of a.responses) if (!/^HTTP\/1\.[01] \d{3} [^\r\n]*$/.test(r.statusLine)) return `malformed status line ${JSON.stringify(r.statusLine)}`;
    if (a.leftover && !a.leftover.startsWith('HTTP/1.')) return `bytes that are not an HTTP answer: ${JSON.stringify(a.leftover.slice(0, 80))}`;
    const statuses = a.responses.map((r) => r.status);
    if (statuses.some((s) => s >= 500)) return `5xx among the answers: ${statuses.join(', ')}`;
    if (o.statuses) {
      if (statuses.join() !== o.statuses.join()) return `answers ${statuses.join(', ') || '(none)'}, expected ${o.statuses.join(', ')}`;
    } else if (!statuses.length) {
      if (o.mustAnswer) return 'the connection closed with no answer';
      if (!a.closed) return 'no answer, and the connection was left open';
    } else if (statuses.some((s) => s < 400)) return `answers ${statuses.join(', ')}, expected 4xx`;
    if (o.shape && a.responses[0]) {
      const r = a.responses[0];
      return o.shape({ kind: 'http', status: r.status, headers: r.headers, text: r.body, ms: a.ms, timedOut: false });
    }
    return undefined;
  };

function describeRequest(request: Request): string {
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  if (isRaw(request)) {
    const raw = Buffer.isBuffer(request.raw) ? request.raw.toString('latin1') : request.raw;
    return `raw ${JSON.stringify(clip(raw, 240))}`;
  }
  const headers = Object.entries(request.headers ?? {})
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${clip([v].flat().join(' | '), 90)}`);
  const body = request.chunks ? Buffer.concat(request.chunks.map((c) => Buffer.from(c))) : request.body;
  const shown = body === undefined ? '' : ` body${request.chunks ? ' (chunked)' : ''} ${JSON.stringify(clip(Buffer.from(body).toString('latin1'), 200))}`;
  return `${request.method} ${clip(request.path, 200)}${headers.length ? ` [${headers.join('; ')}]` : ''}${shown}`;
}

function describeAnswer(a: Answer): string {
  if (a.kind === 'raw') {
    const lines = a.responses.map((r) => `${r.statusLine} ${JSON.stringify(r.body.slice(0, 120))}`);
    return `${lines.join(' / ') || '(no answer)'}; ${a.closed ? 'closed by the server' : 'left open'}${a.timedOut ? ', timed out' : ''} after ${a.ms} ms`;
  }
  if (a.error && !a.status) return `transport error ${a.error} after ${a.ms} ms`;
  const location = a.headers.location ? ` location ${String(a.headers.location).slice(0, 120)}` : '';
  return `${a.status} ${contentType(a)}${location} ${JSON.stringify(a.text.slice(0, 200))} in ${a.ms} ms${a.timedOut ? ' (timed out)' : ''}`;
}

async function pool<T, R>(items: T[], limit: number, run: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await run(items[i]!, i);
      }
    }),
  );
  return results;
}

/** Error-level lines of the server's log (pino level 50 and 60), and anything that looks like a stack trace. */
function errorLines(log: string): string[] {
  return log.split('\n').filter((line) => /"level":(5|6)0\b/.test(line) || /^\s+at \S+ \(|^(Type|Range|Reference)?Error: /.test(line));
}

// ---------------------------------------------------------------------------------------------------
// Building blocks for the tables

const FORM = 'application/x-www-form-urlencoded';
const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64');
const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const basicOf = (id: string, secret: string) => `Basic ${b64(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`;
const basic = (client: RegisteredClient) => basicOf(client.client_id, client.client_secret!);
const qs = (params: [string, string][] | Record<string, string>) => new URLSearchParams(params).toString();
const formPost = (path: string, body: string | Buffer, headers: HeaderMap = {}): HttpRequest => ({
  method: 'POST',
  path,
  headers: { 'content-type': FORM, ...headers },
  body,
});
const chunksOf = (text: string, size = 4096) => text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g'))!;
const repeat = (n: number, unit = 'A') => unit.repeat(n);
/** One character of `s` changed (the middle one by default). */
const flipChar = (s: string, at = Math.floor(s.length / 2)) => `${s.slice(0, at)}${s[at] === 'A' ? 'B' : 'A'}${s.slice(at + 1)}`;
const now = () => Math.floor(Date.now() / 1000);

/** A JWT whose payload was changed after signing (the signature kept). */
function tamperedJwt(jwt: string, change: Record<string, unknown>): string {
  const [header, payload, signature] = jwt.split('.');
  return `${header}.${b64url({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')), ...change })}.${signature}`;
}
const withoutSignature = (jwt: string) => `${jwt.split('.').slice(0, 2).join('.')}.`;
const unsignedJwt = (payload: Record<string, unknown>, typ = 'JWT') => `${b64url({ alg: 'none', typ })}.${b64url(payload)}.`;
function withHeader(jwt: string, change: Record<string, unknown>): string {
  const [header, ...rest] = jwt.split('.');
  return [b64url({ ...JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')), ...change }), ...rest].join('.');
}
function hs256(payload: Record<string, unknown>, secret: string): string {
  const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

function multipart(params: [string, string][]): { headers: HeaderMap; body: string } {
  const boundary = 'campaign-boundary-7a11ec';
  const body = `${params.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')}--${boundary}--\r\n`;
  return { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body };
}

/** mulberry32: a small seeded PRNG, so that the mutation pass is the same on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
type Rng = () => number;
const below = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[below(rng, items.length)]!;
const seededBytes = (seed: number, n: number) => {
  const rng = prng(seed);
  return Buffer.from(Array.from({ length: n }, () => below(rng, 256)));
};

// ---------------------------------------------------------------------------------------------------
// The fixtures: clients and tokens made before the campaign

interface Fixtures {
  issuer: string;
  /** Confidential (Basic), every grant; the client most cases authenticate as. */
  web: RegisteredClient;
  /** Confidential with client_secret_post, client credentials only: its tokens are the mutation pass's to revoke. */
  poster: RegisteredClient;
  /** Public (no secret), device grant only. */
  device: RegisteredClient;
  /** Client-credentials clients, one per mode, and a token each, issued before the campaign. */
  workers: Record<Mode, { client: RegisteredClient; token: string }>;
  /** Code-flow clients, one per mode, with the tokens of one sign-in each, issued before the campaign. */
  flows: Record<Mode, { client: RegisteredClient; access: string; refresh: string; idToken: string }>;
  /** The poster's access token, revoked (or not) by the mutation pass. */
  sacrificial: string;
  /** Signs in during the campaign (consent pages). */
  user: { id: string; username: string; password: string };
  /** The target of failed sign-ins. */
  target: { id: string; username: string; password: string };
  patchClient: RegisteredClient;
  patchUser: { id: string; username: string };
  fixedClientId: string;
}

// ---------------------------------------------------------------------------------------------------
// The tables

/** Malformations of the message itself at a form endpoint: whatever the endpoint, a 4xx in the OAuth shape. */
function messageKinds(family: string, path: string, auth: HeaderMap, params: [string, string][], ok: Check, unserved: Check = oauth()): Case[] {
  const valid = qs(params);
  const big = `${valid}&pad=${repeat(57 * 1024)}`;
  const json = JSON.stringify(Object.fromEntries(params));
  const kinds: [string, HttpRequest, Check?][] = [
    ['no body and no content type', { method: 'POST', path, headers: auth }],
    // RFC 6749 §5.2 answers in JSON, whatever the client says it accepts.
    ['no body, from a client that prefers HTML (Accept: text/html)', { method: 'POST', path, headers: { ...auth, accept: 'text/html,*/*;q=0.8' } }],
    ['an empty form body', formPost(path, '', auth)],
    ['a JSON body', { method: 'POST', path, headers: { ...auth, 'content-type': 'application/json' }, body: json }],
    ['a form body labelled text/plain', { method: 'POST', path, headers: { ...auth, 'content-type': 'text/plain' }, body: valid }],
    ['a form body with no content type', { method: 'POST', path, headers: auth, body: valid }],
    ['a multipart/form-data body', { method: 'POST', path, headers: { ...auth, ...multipart(params).headers }, body: multipart(params).body }],
    ['an XML body', { method: 'POST', path, headers: { ...auth, 'content-type': 'application/xml' }, body: '<request><grant_type>x</grant_type></request>' }],
    ['a UTF-16LE form body', formPost(path, Buffer.from(valid, 'utf16le'), auth)],
    // A server may take gzip (RFC 9110 §8.4): refused, or read as the request it is.
    ['a gzip-compressed form body', formPost(path, gzipSync(valid), { ...auth, 'content-encoding': 'gzip' }), okOr(oauth(), ok)],
    ['a body over 56 KiB', formPost(path, big, auth), oauth({ status: 413 })],
    ['a chunked body over 56 KiB', { method: 'POST', path, headers: { ...auth, 'content-type': FORM }, chunks: chunksOf(big) }, oauth({ status: 413 })],
    ['every parameter twice', formPost(path, `${valid}&${valid}`, auth), oauth({ status: 400 })],
    ['parameters as arrays (name[]=)', formPost(path, qs(params.map(([k, v]): [string, string] => [`${k}[]`, v])), auth)],
    ['parameters as objects (name[k]=)', formPost(path, qs(params.map(([k, v]): [string, string] => [`${k}[k]`, v])), auth)],
    ['2,000 junk parameters instead of the real ones', formPost(path, Array.from({ length: 2000 }, (_, i) => `junk${i}=`).join('&'), auth)],
    ['only separators', formPost(path, '&&&===&=&', auth)],
    ['NUL bytes for a body', formPost(path, Buffer.alloc(64), auth)],
    ['random bytes for a body', formPost(path, seededBytes(SEED, 256), auth)],
    ['the whole body percent-encoded once more', formPost(path, encodeURIComponent(valid), auth)],
    ['JSON text in a form body', formPost(path, json, auth)],
    ['GET with the parameters in the query', { method: 'GET', path: `${path}?${valid}`, headers: auth }, unserved],
    ['PUT', { method: 'PUT', path, headers: { ...auth, 'content-type': FORM }, body: valid }, unserved],
    ['DELETE', { method: 'DELETE', path, headers: auth }, unserved],
  ];
  return kinds.map(([kind, request, expect]) => ({ name: `${family}: ${kind}`, request, expect: expect ?? oauth() }));
}

/** Broken client authentication at an endpoint that requires it (a 4xx in the OAuth shape). */
function clientAuthKinds(family: string, path: string, params: [string, string][], fx: Fixtures): Case[] {
  const body = qs(params);
  const { web, device } = fx;
  const endpoint = `${fx.issuer}${path}`;
  const assertion = (extra: Record<string, unknown> = {}) => {
    return { iss: web.client_id, sub: web.client_id, aud: endpoint, exp: now() + 60, iat: now(), jti: `j${now()}`, ...extra };
  };
  const asPost = (extra: string) => formPost(path, `${body}&${extra}`);
  const jwtBearer = 'client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer';
  const invalidClient = oauth({ status: 401, error: 'invalid_client' });
  const kinds: [string, HttpRequest, Check?][] = [
    ['no client authentication', formPost(path, body)],
    ['Basic with invalid base64', formPost(path, body, { authorization: 'Basic !!!not-base64!!!' })],
    ['Basic credentials without a colon', formPost(path, body, { authorization: `Basic ${b64(web.client_id)}` })],
    ['Basic of an unknown client', formPost(path, body, { authorization: basicOf('no-such-client', 'secret') }), invalidClient],
    ['Basic with a wrong secret', formPost(path, body, { authorization: basicOf(web.client_id, 'wrong-secret') }), invalidClient],
    ['Basic with an empty client id', formPost(path, body, { authorization: basicOf('', web.client_secret!) })],
    ['Basic with an empty secret', formPost(path, body, { authorization: basicOf(web.client_id, '') })],
    ['Basic with 10 KB of credentials', formPost(path, body, { authorization: `Basic ${b64(repeat(7500))}` })],
    ['the Basic scheme without credentials', formPost(path, body, { authorization: 'Basic' })],
    ['an unknown authorization scheme', formPost(path, body, { authorization: `Digest username="${web.client_id}", response="x"` })],
    ['a Bearer header instead of client credentials', formPost(path, body, { authorization: `Bearer ${ADMIN_KEY}` })],
    [
      'Basic and client_secret_post together',
      formPost(path, `${body}&${qs({ client_id: web.client_id, client_secret: web.client_secret! })}`, { authorization: basic(web) }),
    ],
    ['client_id in the body not the one in Basic', formPost(path, `${body}&${qs({ client_id: fx.poster.client_id })}`, { authorization: basic(web) })],
    ['Basic with percent-encoding garbage in the id', formPost(path, body, { authorization: `Basic ${b64('%ZZ%E0%A4%A:secret')}` })],
    ['Basic whose credentials are not UTF-8', formPost(path, body, { authorization: `Basic ${b64(Buffer.from([0xff, 0xfe, 0x3a, 0xc0, 0xaf]))}` })],
    ['Basic with a NUL in the client id', formPost(path, body, { authorization: `Basic ${b64(`${web.client_id}\u0000:${web.client_secret}`)}` })],
    ['a garbage client_assertion', asPost(`client_id=${web.client_id}&${jwtBearer}&client_assertion=garbage`)],
    ['an unknown client_assertion_type', asPost(`client_id=${web.client_id}&client_assertion_type=urn%3Abogus&client_assertion=x.y.z`)],
    ['a client_assertion with alg none', asPost(`client_id=${web.client_id}&${jwtBearer}&client_assertion=${unsignedJwt(assertion())}`)],
    [
      'a client_assertion signed HS256 with the secret',
      asPost(`client_id=${web.client_id}&${jwtBearer}&client_assertion=${hs256(assertion(), web.client_secret!)}`),
    ],
    ['a client_assertion with no client_id', asPost(`${jwtBearer}&client_assertion=${unsignedJwt(assertion({ iss: undefined, sub: undefined }))}`)],
    ['Basic of a public client, which has no secret', formPost(path, body, { authorization: basicOf(device.client_id, '') })],
    ['two Authorization headers, the first a wrong one', formPost(path, body, { authorization: [basicOf(web.client_id, 'wrong'), basic(web)] })],
    [
      'client_id twice with client_secret_post',
      asPost(
        qs([
          ['client_id', web.client_id],
          ['client_id', web.client_id],
          ['client_secret', web.client_secret!],
        ]),
      ),
    ],
  ];
  return kinds.map(([kind, request, expect]) => ({ name: `${family}: ${kind}`, request, expect: expect ?? oauth() }));
}

function tokenCases(fx: Fixtures): Case[] {
  const { web, flows } = fx;
  const auth = { authorization: basic(web) };
  const t = (params: [string, string][] | string, check: Check = oauth({ status: 400 })) => ({
    request: formPost('/token', typeof params === 'string' ? params : qs(params), auth),
    expect: check,
  });
  const cc = (extra: [string, string][]) => t([['grant_type', 'client_credentials'], ...extra]);
  const code = (extra: [string, string][]) => t([['grant_type', 'authorization_code'], ...extra]);
  const valid: [string, string][] = [
    ['grant_type', 'client_credentials'],
    ['scope', 'api:read'],
  ];
  const refresh = (token: string, owner = web) => ({
    request: formPost('/token', qs({ grant_type: 'refresh_token', refresh_token: token }), { authorization: basic(owner) }),
    expect: oauth({ status: 400, error: 'invalid_grant' }),
  });
  const device = (extra: [string, string][]) => t([['grant_type', 'urn:ietf:params:oauth:grant-type:device_code'], ...extra]);
  const dpop = (proof: string) => ({
    request: formPost('/token', 'grant_type=client_credentials&scope=api%3Aread', { ...auth, dpop: proof }),
    expect: oauth(),
  });
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no grant_type': t([['scope', 'api:read']]),
    'an empty grant_type': t([['grant_type', '']]),
    'grant_type password (unsupported)': t([
      ['grant_type', 'password'],
      ['username', 'a'],
      ['password', 'b'],
    ]),
    'grant_type implicit': t([['grant_type', 'implicit']]),
    'grant_type jwt-bearer (unsupported)': t([
      ['grant_type', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
      ['assertion', 'x.y.z'],
    ]),
    'grant_type token-exchange (unsupported)': t([
      ['grant_type', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      ['subject_token', 'x'],
    ]),
    'grant_type in capitals': t([['grant_type', 'CLIENT_CREDENTIALS']]),
    'grant_type with a trailing space': t([['grant_type', 'client_credentials ']]),
    'grant_type with a NUL': t([['grant_type', 'client_credentials\u0000']]),
    'grant_type of 10 KB': t([['grant_type', repeat(10_000, 'g')]]),
    'grant_type twice': t([
      ['grant_type', 'client_credentials'],
      ['grant_type', 'client_credentials'],
    ]),
    'grant_type twice, different': t([
      ['grant_type', 'client_credentials'],
      ['grant_type', 'refresh_token'],
    ]),
    'the name grant_type with a NUL inside': t('grant%00_type=client_credentials&scope=api%3Aread'),
    'client_credentials: scope admin, not in the metadata': cc([['scope', 'admin']]),
    'client_credentials: a scope not in the metadata': cc([['scope', 'api:write']]),
    'client_credentials: a scope with a control character': cc([['scope', 'api:read\u0001']]),
    'client_credentials: a scope with a double quote': cc([['scope', 'api:"read"']]),
    'client_credentials: 1,000 unknown scopes': cc([['scope', Array.from({ length: 1000 }, (_, i) => `s${i}`).join(' ')]]),
    'client_credentials: scope twice': cc([
      ['scope', 'api:read'],
      ['scope', 'api:read'],
    ]),
    'client_credentials: resource not an absolute URI': cc([['resource', 'not a uri']]),
    'client_credentials: resource with a fragment': cc([['resource', 'https://api.example.com/#frag']]),
    'client_credentials: two resources': cc([
      ['resource', 'https://a.example.com'],
      ['resource', 'https://b.example.com'],
    ]),
    'client_credentials: resource of the admin API with scope admin': cc([
      ['resource', `${fx.issuer}/admin`],
      ['scope', 'admin'],
    ]),
    'client_credentials: a DPoP header that is not a JWT': dpop('not-a-jwt'),
    'client_credentials: a DPoP proof with alg none': dpop(unsignedJwt({ htm: 'POST', htu: `${fx.issuer}/token`, iat: now(), jti: 'x' }, 'dpop+jwt')),
    'client_credentials: two DPoP headers': {
      request: formPost('/token', 'grant_type=client_credentials', { ...auth, dpop: ['a.b.c', 'd.e.f'] }),
      expect: oauth(),
    },
    'authorization_code: no code': code([
      ['redirect_uri', REDIRECT_URI],
      ['code_verifier', repeat(43, 'v')],
    ]),
    'authorization_code: an unknown code': code([
      ['code', 'no-such-code'],
      ['redirect_uri', REDIRECT_URI],
      ['code_verifier', repeat(43, 'v')],
    ]),
    'authorization_code: a code with a NUL': code([
      ['code', 'abc\u0000def'],
      ['redirect_uri', REDIRECT_URI],
    ]),
    'authorization_code: a code of 10 KB': code([
      ['code', repeat(10_000, 'c')],
      ['redirect_uri', REDIRECT_URI],
    ]),
    'authorization_code: a code twice': code([
      ['code', 'a'],
      ['code', 'b'],
      ['redirect_uri', REDIRECT_URI],
    ]),
    'authorization_code: redirect_uri not registered': code([
      ['code', 'x'],
      ['redirect_uri', 'https://evil.example/cb'],
      ['code_verifier', repeat(43, 'v')],
    ]),
    'authorization_code: redirect_uri not a URI': code([
      ['code', 'x'],
      ['redirect_uri', '::::'],
      ['code_verifier', repeat(43, 'v')],
    ]),
    'authorization_code: a code_verifier too short': code([
      ['code', 'x'],
      ['redirect_uri', REDIRECT_URI],
      ['code_verifier', 'short'],
    ]),
    'authorization_code: a code_verifier with invalid characters': code([
      ['code', 'x'],
      ['redirect_uri', REDIRECT_URI],
      ['code_verifier', repeat(43, '!')],
    ]),
    'authorization_code: a refresh token as the code': code([
      ['code', flows.reference.refresh],
      ['redirect_uri', REDIRECT_URI],
      ['code_verifier', repeat(43, 'v')],
    ]),
    'refresh_token: no refresh_token': t([['grant_type', 'refresh_token']]),
    'refresh_token: an unknown one': refresh('no-such-refresh-token'),
    'refresh_token: 43 random characters': refresh('q'.repeat(21) + 'Z'.repeat(22)),
    'refresh_token: a JWT-looking string': refresh(`${b64url({ alg: 'ES256' })}.${b64url({ sub: 'x' })}.c2ln`),
    'refresh_token: with a NUL': refresh('abc\u0000def'),
    'refresh_token: of 10 KB': refresh(repeat(10_000, 'r')),
    'refresh_token: an access token': refresh(flows.reference.access, flows.reference.client),
    'refresh_token: a reference one with one character changed, by its client': refresh(flipChar(flows.reference.refresh), flows.reference.client),
    'refresh_token: a jwt-mode one with one character changed, by its client': refresh(flipChar(flows.jwt.refresh), flows.jwt.client),
    'refresh_token: a stateless one with one character changed, by its client': refresh(flipChar(flows.stateless.refresh), flows.stateless.client),
    'refresh_token: a stateless one cut short, by its client': refresh(flows.stateless.refresh.slice(0, -10), flows.stateless.client),
    'refresh_token: a jwt-mode one with a character more, by another client': refresh(`${flows.jwt.refresh}x`),
    'device_code: no device_code': device([]),
    'device_code: an unknown one': device([['device_code', 'no-such-device-code']]),
    'device_code: of 10 KB': device([['device_code', repeat(10_000, 'd')]]),
    'device_code: twice': device([
      ['device_code', 'a'],
      ['device_code', 'b'],
    ]),
  };
  return [
    ...messageKinds(
      'token',
      '/token',
      auth,
      valid,
      jsonWith('an access_token', (b) => !!b?.access_token),
    ),
    ...clientAuthKinds('token', '/token', valid, fx),
    ...Object.entries(kinds).map(([kind, c]) => ({ name: `token: ${kind}`, ...c })),
  ];
}

/** Tokens that are not tokens (at introspection: inactive; at revocation: 200). */
function garbageTokens(fx: Fixtures): Record<string, string> {
  const { workers, flows } = fx;
  return {
    'one character': 'x',
    '43 characters of base64url that are no token': `${'A'.repeat(42)}B`,
    '44 characters': repeat(44, 'z'),
    'a NUL inside': `abc\u0000${repeat(40, 'a')}`,
    '10 KB': repeat(10_000, 't'),
    'an emoji': '😀'.repeat(11),
    'a right-to-left override': `\u202e${repeat(42, 'a')}`,
    'lone UTF-16 surrogates': '\udcff\udcfe',
    'spaces and tabs': ' \t x \t ',
    'only dots': '...',
    'a JWT header alone': b64url({ alg: 'ES256', typ: 'at+jwt' }),
    'a JWT with alg none': unsignedJwt({ iss: fx.issuer, sub: 'x', aud: fx.issuer, exp: now() + 3600, jti: 'campaign' }, 'at+jwt'),
    'a jwt-mode token with its payload changed': tamperedJwt(workers.jwt.token, { scope: 'admin api:read' }),
    'a jwt-mode token with its expiry pushed back': tamperedJwt(workers.jwt.token, { exp: now() + 10 * 365 * 86400 }),
    'a jwt-mode token without its signature': withoutSignature(workers.jwt.token),
    'a jwt-mode token re-labelled alg none': withHeader(withoutSignature(workers.jwt.token), { alg: 'none' }),
    'a jwt-mode token with an unknown kid': withHeader(workers.jwt.token, { kid: 'no-such-key' }),
    'a stateless access token with its payload changed': tamperedJwt(workers.stateless.token, { sub: 'someone-else' }),
    'a stateless refresh token with a character changed': flipChar(flows.stateless.refresh),
    'a stateless refresh token cut short': flows.stateless.refresh.slice(0, -5),
    'a reference token with a character changed': flipChar(workers.reference.token),
    'a reference token in capitals': workers.reference.token.toUpperCase(),
    'a reference token with a character more': `${workers.reference.token}A`,
    'a stl_-prefixed identifier': `stl_${repeat(22, 'A')}`,
  };
}

/** The client the original of a garbage token belongs to (a tampered token is presented by its owner), else web. */
function ownerOf(kind: string, { workers, flows, web }: Fixtures): RegisteredClient {
  if (/jwt-mode/.test(kind)) return workers.jwt.client;
  if (/stateless access/.test(kind)) return workers.stateless.client;
  if (/stateless refresh/.test(kind)) return flows.stateless.client;
  if (/reference/.test(kind)) return workers.reference.client;
  return web;
}

function introspectionCases(fx: Fixtures): Case[] {
  const { web, workers, flows } = fx;
  const path = '/token/introspection';
  const asWeb = { authorization: basic(web) };
  const by = (owner: RegisteredClient, params: [string, string][], expect: Check) => ({
    request: formPost(path, qs(params), { authorization: basic(owner) }),
    expect,
  });
  const cases: Case[] = [
    ...messageKinds('introspection', path, asWeb, [['token', 'campaign-not-a-token']], inactive),
    ...clientAuthKinds('introspection', path, [['token', 'campaign-not-a-token']], fx),
  ];
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no token': by(web, [['token_type_hint', 'access_token']], oauth({ status: 400 })),
    'an empty token': by(web, [['token', '']], oauth({ status: 400 })),
    'token twice': by(
      web,
      [
        ['token', 'a'],
        ['token', 'b'],
      ],
      oauth({ status: 400 }),
    ),
    'token_type_hint twice': by(
      web,
      [
        ['token', 'a'],
        ['token_type_hint', 'access_token'],
        ['token_type_hint', 'refresh_token'],
      ],
      oauth({ status: 400 }),
    ),
    'an unknown token_type_hint': by(
      web,
      [
        ['token', 'campaign-not-a-token'],
        ['token_type_hint', 'bogus'],
      ],
      anyOf(inactive, oauth()),
    ),
    'a token_type_hint of 10 KB': by(
      web,
      [
        ['token', 'campaign-not-a-token'],
        ['token_type_hint', repeat(10_000, 'h')],
      ],
      anyOf(inactive, oauth()),
    ),
    'an ID token': by(flows.reference.client, [['token', flows.reference.idToken]], inactive),
    'a token with a NUL, percent-encoded by hand': { request: formPost(path, `token=${workers.reference.token}%00`, asWeb), expect: inactive },
    'a token with invalid percent-encoding': { request: formPost(path, 'token=%E0%A4%A%ZZ', asWeb), expect: anyOf(inactive, oauth()) },
  };
  // Presented by the client the original belongs to, where there is one: a tampered token must not pass for it.
  for (const [kind, token] of Object.entries(garbageTokens(fx))) {
    kinds[`a token that is ${kind}`] = by(ownerOf(kind, fx), [['token', token]], inactive);
  }
  return [...cases, ...Object.entries(kinds).map(([kind, c]) => ({ name: `introspection: ${kind}`, ...c }))];
}

function revocationCases(fx: Fixtures): Case[] {
  const { web, workers, flows } = fx;
  const path = '/token/revocation';
  const asWeb = { authorization: basic(web) };
  const by = (owner: RegisteredClient, params: [string, string][], expect: Check) => ({
    request: formPost(path, qs(params), { authorization: basic(owner) }),
    expect,
  });
  // Another client's token: refused or ignored, and (checked at the end) still active.
  const foreign = anyOf(revocationOk, oauth());
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no token': by(web, [['token_type_hint', 'access_token']], oauth({ status: 400 })),
    'an empty token': by(web, [['token', '']], oauth({ status: 400 })),
    'token twice': by(
      web,
      [
        ['token', 'a'],
        ['token', 'b'],
      ],
      oauth({ status: 400 }),
    ),
    'token_type_hint twice': by(
      web,
      [
        ['token', 'a'],
        ['token_type_hint', 'access_token'],
        ['token_type_hint', 'refresh_token'],
      ],
      oauth({ status: 400 }),
    ),
    'an unknown token_type_hint': by(
      web,
      [
        ['token', 'campaign-not-a-token'],
        ['token_type_hint', 'bogus'],
      ],
      anyOf(revocationOk, oauth({ error: 'unsupported_token_type' })),
    ),
    'another client’s reference access token': by(web, [['token', workers.reference.token]], foreign),
    'another client’s jwt access token': by(web, [['token', workers.jwt.token]], foreign),
    'another client’s stateless access token': by(web, [['token', workers.stateless.token]], foreign),
    'another client’s reference refresh token': by(web, [['token', flows.reference.refresh]], foreign),
    'another client’s jwt-mode refresh token': by(
      web,
      [
        ['token', flows.jwt.refresh],
        ['token_type_hint', 'refresh_token'],
      ],
      foreign,
    ),
    'another client’s stateless refresh token': by(web, [['token', flows.stateless.refresh]], foreign),
    'an ID token': by(flows.jwt.client, [['token', flows.jwt.idToken]], anyOf(revocationOk, oauth())),
    'a token with invalid percent-encoding': { request: formPost(path, 'token=%E0%A4%A%ZZ', asWeb), expect: anyOf(revocationOk, oauth()) },
  };
  for (const [kind, token] of Object.entries(garbageTokens(fx))) {
    kinds[`a token that is ${kind}`] = by(ownerOf(kind, fx), [['token', token]], revocationOk);
  }
  return [
    ...messageKinds('revocation', path, asWeb, [['token', 'campaign-not-a-token']], revocationOk),
    ...clientAuthKinds('revocation', path, [['token', 'campaign-not-a-token']], fx),
    ...Object.entries(kinds).map(([kind, c]) => ({ name: `revocation: ${kind}`, ...c })),
  ];
}

const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

function authorizationCases(fx: Fixtures): Case[] {
  const { web } = fx;
  const base: Record<string, string> = {
    client_id: web.client_id,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT_URI,
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    state: 'campaign',
  };
  /** The base request with some parameters changed (null: left out) and some added. */
  const auth = (change: Record<string, string | null>, extra: [string, string][] = []) => {
    const params = Object.entries({ ...base, ...change }).filter((e): e is [string, string] => e[1] !== null);
    return { method: 'GET', path: `/auth?${qs([...params, ...extra])}` } satisfies HttpRequest;
  };
  const bad400 = page({ status: 400 });
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no parameters': { request: { method: 'GET', path: '/auth' }, expect: bad400 },
    'no client_id': { request: auth({ client_id: null }), expect: bad400 },
    'an unknown client_id': { request: auth({ client_id: 'no-such-client' }), expect: bad400 },
    'a client_id with a NUL': { request: auth({ client_id: `${web.client_id}\u0000` }), expect: bad400 },
    'a client_id of 10 KB': { request: auth({ client_id: repeat(10_000, 'c') }), expect: bad400 },
    'client_id twice': { request: auth({}, [['client_id', web.client_id]]), expect: bad400 },
    'a redirect_uri not registered': { request: auth({ redirect_uri: 'https://evil.example/callback' }), expect: bad400 },
    'a redirect_uri that is not a URI': { request: auth({ redirect_uri: '::::' }), expect: bad400 },
    'the redirect_uri with a fragment': { request: auth({ redirect_uri: `${REDIRECT_URI}#x` }), expect: bad400 },
    'the redirect_uri with a query added': { request: auth({ redirect_uri: `${REDIRECT_URI}?extra=1` }), expect: bad400 },
    'the redirect_uri over https instead of http': { request: auth({ redirect_uri: REDIRECT_URI.replace('http:', 'https:') }), expect: bad400 },
    'redirect_uri twice': { request: auth({}, [['redirect_uri', REDIRECT_URI]]), expect: authError },
    'no response_type': { request: auth({ response_type: null }), expect: authError },
    'response_type token': { request: auth({ response_type: 'token' }), expect: authError },
    'response_type code id_token': { request: auth({ response_type: 'code id_token' }), expect: authError },
    'response_type twice': { request: auth({}, [['response_type', 'code']]), expect: authError },
    'an unknown response_mode': { request: auth({ response_mode: 'bogus' }), expect: authError },
    'scope twice': { request: auth({}, [['scope', 'openid']]), expect: authError },
    'a scope with a control character': { request: auth({ scope: 'openid\u0001' }), expect: authError },
    'code_challenge_method plain': { request: auth({ code_challenge_method: 'plain' }), expect: authError },
    'code_challenge_method S512': { request: auth({ code_challenge_method: 'S512' }), expect: authError },
    'a code_challenge of 10 characters': { request: auth({ code_challenge: 'abcdefghij' }), expect: authError },
    'a code_challenge with invalid characters': { request: auth({ code_challenge: repeat(43, '!') }), expect: authError },
    'a code_challenge of 200 characters': { request: auth({ code_challenge: repeat(200, 'a') }), expect: authError },
    'code_challenge twice': { request: auth({}, [['code_challenge', CHALLENGE]]), expect: authError },
    'an unknown prompt': { request: auth({ prompt: 'bogus' }), expect: authError },
    'prompt none without a session': { request: auth({ prompt: 'none' }), expect: authError },
    'prompt none with login': { request: auth({ prompt: 'none login' }), expect: authError },
    'max_age negative': { request: auth({ max_age: '-1' }), expect: authError },
    'max_age not a number': { request: auth({ max_age: 'abc' }), expect: authError },
    'a request object that is not a JWT': { request: auth({ request: 'garbage' }), expect: authError },
    'a request object with alg none': { request: auth({ request: unsignedJwt({ ...base, iss: web.client_id, aud: fx.issuer }) }), expect: authError },
    'a request_uri (not supported)': { request: auth({ request_uri: 'https://evil.example/request.jwt' }), expect: authError },
    'an unknown PAR request_uri': { request: auth({ request_uri: 'urn:ietf:params:oauth:request_uri:bogus' }), expect: authError },
    'an id_token_hint that is not a JWT': { request: auth({ id_token_hint: 'garbage' }), expect: authError },
    'an id_token_hint with alg none': { request: auth({ id_token_hint: unsignedJwt({ iss: fx.issuer, sub: 'x', aud: web.client_id }) }), expect: authError },
    'a registration parameter': { request: auth({ registration: '{}' }), expect: authError },
    'a resource that is not a URI': { request: auth({ resource: 'not a uri' }), expect: authError },
    'a resource with a fragment': { request: auth({ resource: 'https://api.example.com/#x' }), expect: authError },
    'invalid percent-encoding in the query': {
      request: { method: 'GET', path: `/auth?client_id=%ZZ&response_type=code&redirect_uri=%E0%A4%A` },
      expect: bad400,
    },
    'a client_id that is not UTF-8': { request: { method: 'GET', path: `/auth?client_id=%FF%FE&response_type=code` }, expect: bad400 },
    // POST is not served at the authorization endpoint (oidc-provider's enableHttpPostMethods is off).
    'POST (not served) with a JSON body': {
      request: { method: 'POST', path: '/auth', headers: { 'content-type': 'application/json' }, body: JSON.stringify(base) },
      expect: anyOf(page({ status: [400, 404, 405] }), oauth({ status: [400, 404, 405] })),
    },
    'POST with a body over 56 KiB': {
      request: formPost('/auth', `${qs(base)}&pad=${repeat(57 * 1024)}`),
      expect: anyOf(page({ status: 413 }), oauth({ status: 413 })),
    },
    'resuming an unknown interaction (GET /auth/bogus)': { request: { method: 'GET', path: '/auth/bogus-uid' }, expect: anyOf(page(), oauth()) },
    PUT: {
      request: { method: 'PUT', path: '/auth', headers: { 'content-type': FORM }, body: qs(base) },
      expect: anyOf(oauth({ status: [404, 405] }), page()),
    },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `authorization: ${kind}`, ...c }));
}

function parCases(fx: Fixtures): Case[] {
  const { web } = fx;
  const auth = { authorization: basic(web) };
  const base: [string, string][] = [
    ['response_type', 'code'],
    ['scope', 'openid'],
    ['redirect_uri', REDIRECT_URI],
    ['code_challenge', CHALLENGE],
    ['code_challenge_method', 'S256'],
  ];
  const without = (name: string) => base.filter(([k]) => k !== name);
  const with_ = (name: string, value: string) => [...without(name), [name, value]] as [string, string][];
  const par = (params: [string, string][]) => ({ request: formPost('/request', qs(params), auth), expect: oauth({ status: 400 }) });
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no response_type': par(without('response_type')),
    'a redirect_uri not registered': par(with_('redirect_uri', 'https://evil.example/cb')),
    'a request_uri inside a pushed request': par([...base, ['request_uri', 'urn:ietf:params:oauth:request_uri:x']]),
    'code_challenge_method plain': par(with_('code_challenge_method', 'plain')),
    'no code_challenge': par(without('code_challenge').filter(([k]) => k !== 'code_challenge_method')),
    'a request object that is not a JWT': par([...base, ['request', 'garbage']]),
    'an unknown prompt': par([...base, ['prompt', 'bogus']]),
    'response_type twice': par([...base, ['response_type', 'code']]),
  };
  return [
    ...messageKinds(
      'pushed authorization',
      '/request',
      auth,
      base,
      jsonWith('a request_uri', (b) => !!b?.request_uri),
    ),
    ...clientAuthKinds('pushed authorization', '/request', base, fx),
    ...Object.entries(kinds).map(([kind, c]) => ({ name: `pushed authorization: ${kind}`, ...c })),
  ];
}

function deviceAuthorizationCases(fx: Fixtures): Case[] {
  const { device, workers, web } = fx;
  const path = '/device/auth';
  const d = (params: [string, string][], headers: HeaderMap = {}, expect: Check = oauth()) => ({ request: formPost(path, qs(params), headers), expect });
  const issued = jsonWith('a device_code', (b) => !!b?.device_code);
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no client_id': d([['scope', 'openid']]),
    'an unknown client_id': d([['client_id', 'no-such-client']], {}, oauth({ status: [400, 401], error: 'invalid_client' })),
    'a client_id with a NUL': d([['client_id', `${device.client_id}\u0000`]]),
    'a client_id of 10 KB': d([['client_id', repeat(10_000, 'c')]]),
    'client_id twice': d(
      [
        ['client_id', device.client_id],
        ['client_id', device.client_id],
      ],
      {},
      oauth({ status: 400 }),
    ),
    'a scope with a control character': d([
      ['client_id', device.client_id],
      ['scope', 'openid\u0001'],
    ]),
    'scope twice': d(
      [
        ['client_id', device.client_id],
        ['scope', 'openid'],
        ['scope', 'openid'],
      ],
      {},
      oauth({ status: 400 }),
    ),
    'a resource that is not a URI': d([
      ['client_id', device.client_id],
      ['resource', 'not a uri'],
    ]),
    'a client not registered for the device grant': d([], { authorization: basic(workers.reference.client) }, oauth({ status: 400 })),
    'a confidential client without its secret': d([['client_id', web.client_id]], {}, oauth({ status: [400, 401] })),
    'a confidential client with a wrong secret': d([], { authorization: basicOf(web.client_id, 'wrong') }, oauth({ status: 401 })),
    'a public client sending a secret': d([], { authorization: basicOf(device.client_id, 'made-up') }),
    'a request object that is not a JWT': d([
      ['client_id', device.client_id],
      ['request', 'garbage'],
    ]),
  };
  return [
    // GET /device/auth is the device page route /device/:uid, which answers with a page.
    ...messageKinds(
      'device_authorization',
      path,
      {},
      [
        ['client_id', device.client_id],
        ['scope', 'openid'],
      ],
      issued,
      anyOf(oauth(), page()),
    ),
    ...Object.entries(kinds).map(([kind, c]) => ({ name: `device_authorization: ${kind}`, ...c })),
  ];
}

const cookieHeader = (browser: Browser) => [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; ');

/** A fresh device verification page: its session cookie and its xsrf token. */
async function devicePage(issuer: string): Promise<{ cookie: string; xsrf: string }> {
  const browser = new Browser();
  const shown = await browser.navigate(`${issuer}/device`);
  const [form] = parseForms(shown.html, shown.url);
  if (!form?.fields.xsrf) throw new Error(`no device form: ${shown.response.status} ${shown.html.slice(0, 200)}`);
  return { cookie: cookieHeader(browser), xsrf: form.fields.xsrf };
}

function devicePageCases(fx: Fixtures): Case[] {
  const sessioned =
    (body: (xsrf: string) => string, headers: HeaderMap = {}, path = '/device') =>
    async () => {
      const { cookie, xsrf } = await devicePage(fx.issuer);
      return formPost(path, body(xsrf), { cookie, ...headers });
    };
  const kinds: Record<string, { request: Request | (() => Promise<Request>); expect: Check }> = {
    'GET /device/bogus-uid without a session': { request: { method: 'GET', path: '/device/bogus-uid' }, expect: page() },
    'GET /device/bogus-uid with a session': {
      request: async () => ({ method: 'GET', path: '/device/bogus-uid', headers: { cookie: (await devicePage(fx.issuer)).cookie } }),
      expect: page(),
    },
    'GET /device/ with invalid percent-encoding': { request: { method: 'GET', path: '/device/%E0%A4%A' }, expect: anyOf(page(), oauth()) },
    'POST /device without a session or xsrf': { request: formPost('/device', 'user_code=ABCD-EFGH'), expect: page() },
    'POST /device without a session, with a forged xsrf': { request: formPost('/device', 'user_code=ABCD-EFGH&xsrf=forged'), expect: page() },
    'POST /device without a session, a user_code of 20 KB': { request: formPost('/device', `xsrf=forged&user_code=${repeat(20_000, 'B')}`), expect: page() },
    'POST /device with a JSON body': {
      request: { method: 'POST', path: '/device', headers: { 'content-type': 'application/json' }, body: '{"user_code":"ABCD-EFGH","xsrf":"x"}' },
      expect: page(),
    },
    'POST /device with a text/plain body': {
      request: { method: 'POST', path: '/device', headers: { 'content-type': 'text/plain' }, body: 'user_code=A' },
      expect: page(),
    },
    'POST /device/ (trailing slash) without a session': {
      request: formPost('/device/', 'user_code=ABCD-EFGH&xsrf=x'),
      expect: anyOf(page(), oauth({ status: 404 })),
    },
    'POST /device with a forged session cookie': {
      request: formPost('/device', 'user_code=ABCD&xsrf=x', { cookie: '_session=forged; _session.sig=forged; _state.x=forged' }),
      expect: page(),
    },
    'POST /device with a session, a forged xsrf': { request: sessioned(() => 'user_code=ABCD-EFGH&xsrf=forged'), expect: page() },
    'POST /device with a session, no xsrf': { request: sessioned(() => 'user_code=ABCD-EFGH'), expect: page() },
    'POST /device with a session, xsrf twice': { request: sessioned((x) => `user_code=ABCD-EFGH&xsrf=${x}&xsrf=${x}`), expect: page() },
    'POST /device with a session, user_code twice': {
      request: sessioned((x) => `xsrf=${x}&user_code=AAAA&user_code=BBBB`),
      expect: anyOf(page(), pageWithError()),
    },
    'POST /device with a session, an unknown user_code': { request: sessioned((x) => `xsrf=${x}&user_code=WXYZ-WXYZ`), expect: pageWithError() },
    'POST /device with a session, no user_code': { request: sessioned((x) => `xsrf=${x}`), expect: pageWithError() },
    'POST /device with a session, a user_code of 20 KB': {
      request: sessioned((x) => `xsrf=${x}&user_code=${repeat(20_000, 'B')}`),
      expect: anyOf(pageWithError(), page()),
    },
    'POST /device with a session, a user_code with a NUL': { request: sessioned((x) => `xsrf=${x}&user_code=AB%00CD`), expect: anyOf(pageWithError(), page()) },
    'POST /device with a session, a user_code in emoji': {
      request: sessioned((x) => `xsrf=${x}&user_code=${encodeURIComponent('😀😀😀😀')}`),
      expect: anyOf(pageWithError(), page()),
    },
    'POST /device with a session, confirming an unknown user_code': {
      request: sessioned((x) => `xsrf=${x}&user_code=WXYZ-WXYZ&confirm=yes`),
      expect: anyOf(pageWithError(), page()),
    },
    'POST /device with a session, aborting an unknown user_code': {
      request: sessioned((x) => `xsrf=${x}&user_code=WXYZ-WXYZ&abort=yes`),
      expect: anyOf(pageWithError(), page()),
    },
    'POST /device with a session, a body over 56 KiB': {
      request: sessioned((x) => `xsrf=${x}&user_code=${repeat(57 * 1024, 'B')}`),
      expect: anyOf(page({ status: 413 }), oauth({ status: 413 })),
    },
    'POST /device with a session, a JSON body': {
      request: async () => {
        const { cookie, xsrf } = await devicePage(fx.issuer);
        return { method: 'POST', path: '/device', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ user_code: 'ABCD', xsrf }) };
      },
      expect: page(),
    },
    'PUT /device': {
      request: { method: 'PUT', path: '/device', headers: { 'content-type': FORM }, body: 'user_code=A' },
      expect: anyOf(oauth({ status: [404, 405] }), page()),
    },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `device pages: ${kind}`, ...c }));
}

function userinfoCases(fx: Fixtures): Case[] {
  const { workers, flows } = fx;
  const me = (headers: HeaderMap, method = 'GET', path = '/me', body?: string): HttpRequest => ({ method, path, headers, body });
  const invalid = oauth({ status: [400, 401, 403], wwwAuthenticate: true });
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no access token': { request: me({}), expect: oauth({ status: [400, 401], wwwAuthenticate: true }) },
    'no access token, from a client that prefers HTML': {
      request: me({ accept: 'text/html,*/*;q=0.8' }),
      expect: oauth({ status: [400, 401], wwwAuthenticate: true }),
    },
    'a Bearer token that is no token': { request: me({ authorization: 'Bearer not-a-token' }), expect: oauth({ status: 401, wwwAuthenticate: true }) },
    'an empty Bearer': { request: me({ authorization: 'Bearer ' }), expect: invalid },
    'the Bearer scheme without a token': { request: me({ authorization: 'Bearer' }), expect: invalid },
    'a Bearer token of 10 KB': { request: me({ authorization: `Bearer ${repeat(10_000, 'b')}` }), expect: invalid },
    'Basic credentials instead of a token': { request: me({ authorization: basic(fx.web) }), expect: invalid },
    'an unknown scheme': { request: me({ authorization: `Token ${flows.reference.access}` }), expect: invalid },
    'the DPoP scheme with no proof': { request: me({ authorization: `DPoP ${flows.reference.access}` }), expect: invalid },
    'a DPoP proof that is not a JWT': { request: me({ authorization: `DPoP ${flows.reference.access}`, dpop: 'garbage' }), expect: invalid },
    'a client-credentials token (reference)': { request: me({ authorization: `Bearer ${workers.reference.token}` }), expect: invalid },
    'a client-credentials token (jwt)': { request: me({ authorization: `Bearer ${workers.jwt.token}` }), expect: invalid },
    'a client-credentials token (stateless)': { request: me({ authorization: `Bearer ${workers.stateless.token}` }), expect: invalid },
    'a refresh token': { request: me({ authorization: `Bearer ${flows.reference.refresh}` }), expect: invalid },
    'a stateless refresh token': { request: me({ authorization: `Bearer ${flows.stateless.refresh}` }), expect: invalid },
    'an ID token': { request: me({ authorization: `Bearer ${flows.jwt.idToken}` }), expect: invalid },
    'a jwt access token with its payload changed': {
      request: me({ authorization: `Bearer ${tamperedJwt(flows.jwt.access, { sub: 'someone-else' })}` }),
      expect: invalid,
    },
    'a jwt access token without its signature': { request: me({ authorization: `Bearer ${withoutSignature(flows.jwt.access)}` }), expect: invalid },
    'a stateless access token re-labelled alg none': {
      request: me({ authorization: `Bearer ${withHeader(withoutSignature(flows.stateless.access), { alg: 'none' })}` }),
      expect: invalid,
    },
    'a reference access token with a character changed': { request: me({ authorization: `Bearer ${flipChar(flows.reference.access)}` }), expect: invalid },
    'the token in the query string': { request: me({}, 'GET', `/me?access_token=${flows.reference.access}x`), expect: invalid },
    'the token both in the header and in the body': {
      request: me({ authorization: `Bearer ${flows.reference.access}`, 'content-type': FORM }, 'POST', '/me', qs({ access_token: flows.reference.access })),
      expect: oauth({ status: 400 }),
    },
    'a form body with a garbage access_token': { request: me({ 'content-type': FORM }, 'POST', '/me', 'access_token=garbage'), expect: invalid },
    'a JSON body with the access token': {
      request: me({ 'content-type': 'application/json' }, 'POST', '/me', JSON.stringify({ access_token: 'x' })),
      expect: invalid,
    },
    'a body over 56 KiB': { request: me({ 'content-type': FORM }, 'POST', '/me', `access_token=${repeat(57 * 1024)}`), expect: oauth({ status: 413 }) },
    PUT: { request: me({ authorization: `Bearer ${flows.reference.access}` }, 'PUT'), expect: oauth({ status: [404, 405] }) },
    DELETE: { request: me({ authorization: `Bearer ${flows.reference.access}` }, 'DELETE'), expect: oauth({ status: [404, 405] }) },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `userinfo: ${kind}`, ...c }));
}

function endSessionCases(fx: Fixtures): Case[] {
  const { web, flows } = fx;
  const end = (params: [string, string][]) => ({ method: 'GET', path: `/session/end?${qs(params)}` }) satisfies HttpRequest;
  const bad = page({ status: 400 });
  const withSession = async () => {
    const browser = new Browser();
    const shown = await browser.navigate(`${fx.issuer}/session/end`);
    const [form] = parseForms(shown.html, shown.url);
    if (!form) throw new Error(`no logout form: ${shown.response.status}`);
    return { cookie: cookieHeader(browser), form };
  };
  const kinds: Record<string, { request: Request | (() => Promise<Request>); expect: Check }> = {
    'an id_token_hint that is not a JWT': { request: end([['id_token_hint', 'garbage']]), expect: bad },
    'an id_token_hint of 10 KB': { request: end([['id_token_hint', repeat(10_000, 'h')]]), expect: bad },
    'an id_token_hint with alg none': { request: end([['id_token_hint', unsignedJwt({ iss: fx.issuer, sub: 'x', aud: web.client_id })]]), expect: bad },
    'an id_token_hint with its payload changed': {
      request: end([['id_token_hint', tamperedJwt(flows.reference.idToken, { sub: 'someone-else' })]]),
      expect: bad,
    },
    'an id_token_hint for another client than client_id': {
      request: end([
        ['id_token_hint', flows.reference.idToken],
        ['client_id', web.client_id],
      ]),
      expect: bad,
    },
    'a post_logout_redirect_uri not registered': {
      request: end([
        ['client_id', web.client_id],
        ['post_logout_redirect_uri', 'https://evil.example/bye'],
      ]),
      expect: bad,
    },
    'a post_logout_redirect_uri that is not a URI': {
      request: end([
        ['client_id', web.client_id],
        ['post_logout_redirect_uri', '::::'],
      ]),
      expect: bad,
    },
    'an unknown client_id': { request: end([['client_id', 'no-such-client']]), expect: bad },
    'a client_id with a NUL': { request: end([['client_id', `${web.client_id}\u0000`]]), expect: bad },
    'client_id twice': {
      request: end([
        ['client_id', web.client_id],
        ['client_id', web.client_id],
      ]),
      expect: bad,
    },
    'invalid percent-encoding in the query': { request: { method: 'GET', path: '/session/end?client_id=%ZZ%E0%A4%A' }, expect: bad },
    'POST (not served) with id_token_hint twice': {
      request: formPost(
        '/session/end',
        qs([
          ['id_token_hint', 'a'],
          ['id_token_hint', 'b'],
        ]),
      ),
      expect: anyOf(bad, oauth({ status: [404, 405] })),
    },
    'POST confirm without a session or xsrf': { request: formPost('/session/end/confirm', 'logout=yes'), expect: bad },
    'POST confirm without a session, a forged xsrf': { request: formPost('/session/end/confirm', 'logout=yes&xsrf=forged'), expect: bad },
    'POST confirm with a JSON body': {
      request: { method: 'POST', path: '/session/end/confirm', headers: { 'content-type': 'application/json' }, body: '{"logout":"yes","xsrf":"x"}' },
      expect: bad,
    },
    'POST confirm with a session, a forged xsrf': {
      request: async () => formPost('/session/end/confirm', 'logout=yes&xsrf=forged', { cookie: (await withSession()).cookie }),
      expect: bad,
    },
    'POST confirm with a session, xsrf twice': {
      request: async () => {
        const { cookie, form } = await withSession();
        return formPost('/session/end/confirm', `logout=yes&xsrf=${form.fields.xsrf}&xsrf=${form.fields.xsrf}`, { cookie });
      },
      expect: bad,
    },
    'POST confirm with a body over 56 KiB': {
      request: formPost('/session/end/confirm', `xsrf=x&pad=${repeat(57 * 1024)}`),
      expect: anyOf(page({ status: 413 }), oauth({ status: 413 })),
    },
    'PUT /session/end': { request: { method: 'PUT', path: '/session/end' }, expect: anyOf(oauth({ status: [404, 405] }), page()) },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `end-session: ${kind}`, ...c }));
}

function interactionCases(fx: Fixtures): Case[] {
  const { web } = fx;
  const params = { client_id: web.client_id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, code_challenge: CHALLENGE };
  const authUrl = () => `${fx.issuer}/auth?${qs({ ...params, code_challenge_method: 'S256' })}`;
  /** A login page in progress: its cookie, its form's action path and fields. */
  const loginPage = async () => {
    const browser = new Browser();
    const shown = await browser.navigate(authUrl(), {}, REDIRECT_URI);
    const [form] = parseForms(shown.html, shown.url);
    if (!(form && Object.hasOwn(form.fields, 'username'))) throw new Error(`no login page: ${shown.response.status} ${shown.html.slice(0, 200)}`);
    return { browser, form, cookie: cookieHeader(browser), path: new URL(form.action).pathname, csrf: form.fields._csrf! };
  };
  /** A consent page in progress (signed in as fx.user). */
  const consentPage = async () => {
    const login = await loginPage();
    const shown = await login.browser.submit(login.form, { username: fx.user.username, password: fx.user.password }, REDIRECT_URI);
    const [allow] = parseForms(shown.html, shown.url);
    if (!allow || Object.hasOwn(allow.fields, 'username')) throw new Error(`no consent page: ${shown.response.status} ${shown.html.slice(0, 200)}`);
    return { cookie: cookieHeader(login.browser), path: new URL(allow.action).pathname, csrf: allow.fields._csrf! };
  };
  const login =
    (body: (csrf: string) => string | Buffer, headers: HeaderMap = {}) =>
    async () => {
      const p = await loginPage();
      return formPost(p.path, body(p.csrf), { cookie: p.cookie, ...headers });
    };
  const consent =
    (body: (csrf: string) => string, headers: HeaderMap = {}) =>
    async () => {
      const p = await consentPage();
      return formPost(p.path, body(p.csrf), { cookie: p.cookie, ...headers });
    };
  const who = fx.target.username;
  const refused = pageWithError({ status: [200, 401, 429] });
  const kinds: Record<string, { request: Request | (() => Promise<Request>); expect: Check }> = {
    'login: no _csrf': { request: login(() => `username=${who}&password=wrong`), expect: page({ status: 403 }) },
    'login: a forged _csrf': { request: login(() => `username=${who}&password=wrong&_csrf=forged`), expect: page({ status: 403 }) },
    'login: _csrf twice': { request: login((c) => `username=${who}&password=wrong&_csrf=${c}&_csrf=${c}`), expect: page({ status: 403 }) },
    'login: the _csrf of another interaction': {
      request: async () => {
        const [mine, theirs] = [await loginPage(), await loginPage()];
        return formPost(mine.path, `username=${who}&password=wrong&_csrf=${encodeURIComponent(theirs.csrf)}`, { cookie: mine.cookie });
      },
      expect: page({ status: 403 }),
    },
    'login: empty username and password': { request: login((c) => qs({ username: '', password: '', _csrf: c })), expect: refused },
    'login: no username or password': { request: login((c) => qs({ _csrf: c })), expect: refused },
    'login: a wrong password': { request: login((c) => qs({ username: who, password: 'wrong password', _csrf: c })), expect: refused },
    'login: an unknown username': { request: login((c) => qs({ username: 'nobody-at-all', password: 'whatever1', _csrf: c })), expect: refused },
    'login: username twice': {
      request: login((c) =>
        qs([
          ['username', who],
          ['username', who],
          ['password', 'x'],
          ['_csrf', c],
        ]),
      ),
      expect: refused,
    },
    'login: a username with a NUL': { request: login((c) => qs({ username: `${who}\u0000`, password: 'wrong', _csrf: c })), expect: refused },
    'login: a username with control characters': {
      request: login((c) => qs({ username: `\u001b[31m${who}\r\n`, password: 'wrong', _csrf: c })),
      expect: refused,
    },
    'login: a username in emoji and RTL override': {
      request: login((c) => qs({ username: `😀\u202e${who}`, password: 'wrong', _csrf: c })),
      expect: refused,
    },
    'login: a username of 5 KB': { request: login((c) => qs({ username: repeat(5000, 'u'), password: 'wrong', _csrf: c })), expect: refused },
    'login: a password of 9 KB': { request: login((c) => qs({ username: who, password: repeat(9000, 'p'), _csrf: c })), expect: refused },
    'login: invalid percent-encoding': { request: login((c) => `username=%ZZ${who}%E0%A4%A&password=%&_csrf=${encodeURIComponent(c)}`), expect: refused },
    'login: a body over 10 KB': { request: login((c) => qs({ username: who, password: repeat(12_000, 'p'), _csrf: c })), expect: page({ status: 413 }) },
    'login: more than 20 parameters': {
      request: login((c) => `${qs({ username: who, password: 'x', _csrf: c })}&${Array.from({ length: 30 }, (_, i) => `p${i}=1`).join('&')}`),
      expect: page({ status: [400, 413] }),
    },
    'login: a JSON body': {
      request: login((c) => JSON.stringify({ username: who, password: 'x', _csrf: c }), { 'content-type': 'application/json' }),
      expect: page({ status: [400, 403, 415] }),
    },
    'login: a text/plain body': { request: login((c) => qs({ username: who, password: 'x', _csrf: c }), { 'content-type': 'text/plain' }), expect: page() },
    'login: a form body in UTF-16 (charset=utf-16)': {
      request: login((c) => Buffer.from(qs({ username: who, password: 'x', _csrf: c }), 'utf16le'), { 'content-type': `${FORM}; charset=utf-16` }),
      expect: page(),
    },
    'login: a gzip body that is not gzip': {
      request: login((c) => qs({ username: who, password: 'x', _csrf: c }), { 'content-encoding': 'gzip' }),
      expect: page(),
    },
    'login: posted to another interaction': {
      request: async () => {
        const [mine, theirs] = [await loginPage(), await loginPage()];
        return formPost(theirs.path, qs({ username: who, password: 'x', _csrf: mine.csrf }), { cookie: mine.cookie });
      },
      expect: page({ status: 400 }),
    },
    'login: without the cookie': {
      request: async () => {
        const p = await loginPage();
        return formPost(p.path, qs({ username: who, password: 'x', _csrf: p.csrf }));
      },
      expect: page(),
    },
    'login: with a tampered cookie': {
      request: async () => {
        const p = await loginPage();
        return formPost(p.path, qs({ username: who, password: 'x', _csrf: p.csrf }), { cookie: p.cookie.replace(/=([^;]{4})/g, '=XXXX') });
      },
      expect: page(),
    },
    'GET an interaction without its cookie': {
      request: async () => ({ method: 'GET', path: (await loginPage()).path }),
      expect: page(),
    },
    'GET an interaction id that does not percent-decode': { request: { method: 'GET', path: '/interaction/%E0%A4%A' }, expect: page({ status: 400 }) },
    'GET /interaction/ with no id': { request: { method: 'GET', path: '/interaction/' }, expect: page({ status: 404 }) },
    'GET an interaction with a path after it': {
      request: async () => {
        const p = await loginPage();
        return { method: 'GET', path: `${p.path}/extra`, headers: { cookie: p.cookie } };
      },
      expect: page({ status: 404 }),
    },
    'PUT an interaction': {
      request: async () => {
        const p = await loginPage();
        return { method: 'PUT', path: p.path, headers: { cookie: p.cookie, 'content-type': FORM }, body: qs({ username: who, password: 'x', _csrf: p.csrf }) };
      },
      expect: page({ status: [404, 405] }),
    },
    'consent: no _csrf': { request: consent(() => ''), expect: page({ status: 403 }) },
    'consent: a forged _csrf': { request: consent(() => '_csrf=forged'), expect: page({ status: 403 }) },
    'consent: _csrf twice': { request: consent((c) => `_csrf=${c}&_csrf=${c}`), expect: page({ status: 403 }) },
    'consent: a body over 10 KB': { request: consent((c) => qs({ _csrf: c, pad: repeat(12_000) })), expect: page({ status: 413 }) },
    'consent: a JSON body': {
      request: consent((c) => JSON.stringify({ _csrf: c }), { 'content-type': 'application/json' }),
      expect: page({ status: [400, 403, 415] }),
    },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `interaction: ${kind}`, ...c }));
}

function streamCases(fx: Fixtures): Case[] {
  const { web, device } = fx;
  const stream = (headers: HeaderMap, path = '/revocations/stream', method = 'GET') => ({ method, path, headers }) satisfies HttpRequest;
  const asWeb = { authorization: basic(web) };
  const refused = oauth({ status: 401, error: 'invalid_client' });
  const badId = oauth({ status: 400 });
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    'no credentials': { request: stream({}), expect: refused },
    'Basic with invalid base64': { request: stream({ authorization: 'Basic !!!' }), expect: refused },
    'Basic credentials without a colon': { request: stream({ authorization: `Basic ${b64(web.client_id)}` }), expect: refused },
    'Basic of an unknown client': { request: stream({ authorization: basicOf('no-such-client', 'x') }), expect: refused },
    'Basic with a wrong secret': { request: stream({ authorization: basicOf(web.client_id, 'wrong') }), expect: refused },
    'Basic of a public client': { request: stream({ authorization: basicOf(device.client_id, '') }), expect: refused },
    'Basic with percent-encoding garbage': { request: stream({ authorization: `Basic ${b64(`%ZZ${web.client_id}:%E0%A4%A`)}` }), expect: refused },
    'Basic that is not UTF-8': { request: stream({ authorization: `Basic ${b64(Buffer.from([0xff, 0x3a, 0xfe]))}` }), expect: refused },
    'Basic of 10 KB': { request: stream({ authorization: `Basic ${b64(repeat(7500))}` }), expect: refused },
    'a Bearer token instead of Basic': { request: stream({ authorization: `Bearer ${ADMIN_KEY}` }), expect: refused },
    'a client access token as Bearer': { request: stream({ authorization: `Bearer ${fx.workers.reference.token}` }), expect: refused },
    'Last-Event-ID not a number': { request: stream({ ...asWeb, 'last-event-id': 'yesterday' }), expect: badId },
    'Last-Event-ID negative': { request: stream({ ...asWeb, 'last-event-id': '-1' }), expect: badId },
    'Last-Event-ID a fraction': { request: stream({ ...asWeb, 'last-event-id': '1.5' }), expect: badId },
    'Last-Event-ID in exponent form': { request: stream({ ...asWeb, 'last-event-id': '1e3' }), expect: badId },
    'Last-Event-ID in hex': { request: stream({ ...asWeb, 'last-event-id': '0x10' }), expect: badId },
    'Last-Event-ID with spaces inside': { request: stream({ ...asWeb, 'last-event-id': '1 2' }), expect: badId },
    'Last-Event-ID past 32 bits (2147483648)': { request: stream({ ...asWeb, 'last-event-id': '2147483648' }), expect: badId },
    'Last-Event-ID of 20 digits': { request: stream({ ...asWeb, 'last-event-id': '99999999999999999999' }), expect: badId },
    'Last-Event-ID of 1,000 digits': { request: stream({ ...asWeb, 'last-event-id': repeat(1000, '9') }), expect: badId },
    'Last-Event-ID twice': { request: stream({ ...asWeb, 'last-event-id': ['1', '2'] }), expect: badId },
    'Last-Event-ID in Latin-1': { request: stream({ ...asWeb, 'last-event-id': '\u00b9\u00b2' }), expect: badId },
    'last_event_id in the query not a number': { request: stream(asWeb, '/revocations/stream?last_event_id=abc'), expect: badId },
    'last_event_id in the query twice': { request: stream(asWeb, '/revocations/stream?last_event_id=1&last_event_id=2'), expect: badId },
    'last_event_id in the query past 32 bits': { request: stream(asWeb, '/revocations/stream?last_event_id=4294967296'), expect: badId },
    'last_event_id with invalid percent-encoding': { request: stream(asWeb, '/revocations/stream?last_event_id=%ZZ'), expect: badId },
    'POST /revocations/stream': { request: stream(asWeb, '/revocations/stream', 'POST'), expect: oauth({ status: [404, 405] }) },
    'DELETE /revocations/stream': { request: stream(asWeb, '/revocations/stream', 'DELETE'), expect: oauth({ status: [404, 405] }) },
    'GET /revocations/': { request: stream(asWeb, '/revocations/'), expect: oauth({ status: 404 }) },
    'GET /revocations/streams': { request: stream(asWeb, '/revocations/streams'), expect: oauth({ status: 404 }) },
    'GET /revocations/stream/extra': { request: stream(asWeb, '/revocations/stream/extra'), expect: oauth({ status: 404 }) },
    'GET /revocations/%E0%A4%A': { request: stream(asWeb, '/revocations/%E0%A4%A'), expect: oauth({ status: [400, 404] }) },
    'GET /revocations/nothing asking for HTML': { request: stream({ accept: 'text/html' }, '/revocations/nothing'), expect: oauth({ status: 404 }) },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `revocation stream: ${kind}`, ...c }));
}

function adminCases(fx: Fixtures): Case[] {
  const { workers, flows } = fx;
  const key = { authorization: `Bearer ${ADMIN_KEY}` };
  const A = (method: string, path: string, body?: unknown, headers: HeaderMap = {}): HttpRequest => ({
    method,
    path: `/admin${path}`,
    headers: { ...key, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  const cases: Case[] = [];
  const add = (kind: string, request: HttpRequest, expect: Check = problem()) => cases.push({ name: `admin: ${kind}`, request, expect });

  // Authentication, everywhere.
  const routes: [string, string, unknown?][] = [
    ['GET', '/clients'],
    ['POST', '/clients', { client_name: 'x' }],
    ['GET', `/clients/${fx.patchClient.client_id}`],
    ['PATCH', `/clients/${fx.patchClient.client_id}`, { client_name: 'x' }],
    ['DELETE', `/clients/${fx.patchClient.client_id}`],
    ['POST', `/clients/${fx.patchClient.client_id}/secret`],
    ['POST', '/users', { username: 'x', password: 'long enough' }],
    ['GET', '/users'],
    ['GET', `/users/${fx.patchUser.id}`],
    ['PATCH', `/users/${fx.patchUser.id}`, { name: 'x' }],
    ['DELETE', `/users/${fx.patchUser.id}`],
    ['POST', `/users/${fx.patchUser.id}/unlock`],
    ['DELETE', `/users/${fx.patchUser.id}/factors`],
    ['GET', '/tokens'],
    ['GET', '/tokens/00000000-0000-0000-0000-000000000000'],
    ['POST', '/tokens/00000000-0000-0000-0000-000000000000/revoke'],
    ['POST', '/revocations', { subject: workers.reference.client.client_id }],
    ['POST', '/prune', {}],
    ['GET', '/keys'],
    ['POST', '/keys/rotate'],
    ['GET', '/audit'],
  ];
  for (const [method, path, body] of routes) {
    const label = `${method} ${path.replace(/[0-9a-f-]{36}|[\w-]{20,}/g, '{id}')}`;
    add(`${label} without credentials`, A(method, path, body, { authorization: undefined }), problem({ status: 401 }));
    add(`${label} with a wrong key`, A(method, path, body, { authorization: 'Bearer wrong-key-0123456789-abcdefghijklmnopqrstuv' }), problem({ status: 401 }));
    const clientToken = { authorization: `Bearer ${workers.reference.token}` };
    add(`${label} with a client token without scope admin`, A(method, path, body, clientToken), problem({ status: 403 }));
  }
  const auth: Record<string, string | string[]> = {
    'the key with its last character changed': `Bearer ${ADMIN_KEY.slice(0, -1)}${ADMIN_KEY.endsWith('p') ? 'q' : 'p'}`,
    'a prefix of the key': `Bearer ${ADMIN_KEY.slice(0, 31)}`,
    'the key with a character more': `Bearer ${ADMIN_KEY}x`,
    'the key in Basic': `Basic ${b64(`admin:${ADMIN_KEY}`)}`,
    'the Bearer scheme without a key': 'Bearer',
    'an empty Bearer': 'Bearer ',
    'a Bearer of 10 KB': `Bearer ${repeat(10_000, 'k')}`,
    'a Bearer with Latin-1 characters': `Bearer ${ADMIN_KEY.slice(0, -1)}\u00e9`,
    'a jwt client token without scope admin': `Bearer ${workers.jwt.token}`,
    'a stateless client token without scope admin': `Bearer ${workers.stateless.token}`,
    'a jwt token with scope admin forged into its payload': `Bearer ${tamperedJwt(workers.jwt.token, { scope: 'admin', aud: `${fx.issuer}/admin` })}`,
    'a stateless token with scope admin forged into its payload': `Bearer ${tamperedJwt(workers.stateless.token, { scope: 'admin', aud: `${fx.issuer}/admin` })}`,
    'an unsigned JWT with scope admin': `Bearer ${unsignedJwt({ iss: fx.issuer, sub: 'x', aud: `${fx.issuer}/admin`, scope: 'admin', exp: now() + 3600 }, 'at+jwt')}`,
    'a refresh token': `Bearer ${flows.reference.refresh}`,
    'a stateless refresh token': `Bearer ${flows.stateless.refresh}`,
    'an ID token': `Bearer ${flows.jwt.idToken}`,
    'a user access token without scope admin': `Bearer ${flows.reference.access}`,
    'two Authorization headers, the first wrong': ['Bearer wrong', `Bearer ${ADMIN_KEY}`],
  };
  for (const [kind, value] of Object.entries(auth)) {
    add(`GET /clients with ${kind}`, A('GET', '/clients', undefined, { authorization: value }), problem({ status: [401, 403] }));
  }
  const inQuery = A('GET', `/clients?access_token=${ADMIN_KEY}`, undefined, { authorization: undefined });
  add('the key in the query string instead of the header', inQuery, problem({ status: 401 }));

  // Bodies that are not the JSON object they should be, at every route that takes one.
  const writes: [string, string, string, Record<string, unknown>][] = [
    ['POST /clients', 'POST', '/clients', { client_name: 'campaign', grant_types: ['client_credentials'], response_types: [], scope: 'api:read' }],
    ['PATCH /clients/{id}', 'PATCH', `/clients/${fx.patchClient.client_id}`, { client_name: 'patched' }],
    ['POST /users', 'POST', '/users', { username: 'campaign-body', password: 'long enough password' }],
    ['PATCH /users/{id}', 'PATCH', `/users/${fx.patchUser.id}`, { name: 'Patched' }],
    ['POST /revocations', 'POST', '/revocations', { subject: 'campaign-nobody' }],
    ['POST /prune', 'POST', '/prune', { older_than_seconds: 86_400 }],
  ];
  for (const [label, method, path, valid] of writes) {
    const text = JSON.stringify(valid);
    const firstKey = Object.keys(valid)[0]!;
    const big = JSON.stringify({ ...valid, pad: repeat(101 * 1024) });
    const json = { 'content-type': 'application/json' };
    const kinds: [string, HttpRequest, Check?][] = [
      ['invalid JSON', A(method, path, '{')],
      ['truncated JSON', A(method, path, text.slice(0, -1))],
      ['JSON followed by garbage', A(method, path, `${text}x`)],
      ['two JSON documents', A(method, path, `${text}${text}`)],
      ['a JSON array', A(method, path, `[${text}]`)],
      ['a JSON string', A(method, path, '"campaign"')],
      ['a JSON number', A(method, path, '42')],
      ['JSON true', A(method, path, 'true')],
      ['JSON null', A(method, path, 'null')],
      ['a duplicated key', A(method, path, text.replace('{', `{"${firstKey}":${JSON.stringify(valid[firstKey])},`))],
      ['an unknown field', A(method, path, { ...valid, campaign_unknown: 1 })],
      ['a __proto__ key', A(method, path, text.replace('{', '{"__proto__":{"admin":true},'))],
      ['a constructor key', A(method, path, text.replace('{', '{"constructor":{"prototype":{}},'))],
      ['a text/plain body', A(method, path, text, { 'content-type': 'text/plain' }), problem({ status: 415 })],
      ['a form body', A(method, path, qs({ x: '1' }), { 'content-type': FORM }), problem({ status: 415 })],
      ['JSON without a content type', A(method, path, text, { 'content-type': undefined }), problem({ status: [400, 415] })],
      ['JSON with a byte-order mark', A(method, path, `\ufeff${text}`)],
      ['single-quoted JSON', A(method, path, text.replace(/"/g, "'"))],
      ['NaN in JSON', A(method, path, text.replace('{', '{"x":NaN,'))],
      ['a comment in JSON', A(method, path, text.replace('{', '{/* comment */'))],
      ['a raw NUL byte in JSON', A(method, path, Buffer.concat([Buffer.from('{\u0000'), Buffer.from(text.slice(1))]))],
      ['a UTF-16LE JSON body', A(method, path, Buffer.from(text, 'utf16le'), json)],
      ['a gzip-compressed JSON body', A(method, path, gzipSync(text), { ...json, 'content-encoding': 'gzip' })],
      ['a body over 100 kB', A(method, path, big), problem({ status: 413 })],
      ['a chunked body over 100 kB', { ...A(method, path), headers: { ...key, ...json }, chunks: chunksOf(big) }, problem({ status: 413 })],
      ['JSON nested 10,000 deep', A(method, path, `{"${firstKey}":${repeat(10_000, '[')}${repeat(10_000, ']')}}`)],
    ];
    for (const [kind, request, expect] of kinds) add(`${label} with ${kind}`, request, expect);
  }

  // Wrong values, field by field.
  const field = (label: string, method: string, path: string, body: Record<string, unknown>, name: string, status: number | number[] = 400) =>
    add(`${label}: ${name} ${JSON.stringify(body[name] ?? body).slice(0, 60)}`, A(method, path, body), problem({ status, field: name }));
  const client = (name: string, value: unknown) => field('POST /clients', 'POST', '/clients', { client_name: 'campaign', [name]: value }, name);
  client('client_name', 42);
  client('client_name', '');
  client('client_name', repeat(201, 'n'));
  client('client_name', ['a']);
  client('client_name', 'a\u0000b');
  client('redirect_uris', 'https://app.example.com/cb');
  client('redirect_uris', [1]);
  client('redirect_uris', ['not a uri']);
  client('redirect_uris', ['/relative/callback']);
  client('redirect_uris', ['https://app.example.com/cb#fragment']);
  client('redirect_uris', ['http://app.example.com/cb']);
  client('redirect_uris', ['javascript:alert(1)']);
  client('redirect_uris', [null]);
  client(
    'redirect_uris',
    Array.from({ length: 51 }, (_, i) => `https://app.example.com/cb${i}`),
  );
  client('redirect_uris', [`https://app.example.com/${repeat(2100, 'p')}`]);
  client('redirect_uris', ['https://app.example.com/\u0000']);
  client('post_logout_redirect_uris', ['not a uri']);
  client('grant_types', ['password']);
  client('grant_types', 'client_credentials');
  client('grant_types', ['implicit']);
  client('response_types', ['token']);
  client('response_types', 'code');
  client('token_endpoint_auth_method', 'attest_jwt_client_auth');
  // RFC 8705: tls_client_auth needs one tls_client_auth_* field naming the certificate.
  field(
    'POST /clients',
    'POST',
    '/clients',
    { client_name: 'campaign', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'tls_client_auth' },
    'token_endpoint_auth_method',
  );
  client('tls_client_auth_san_ip', 'not an address');
  client('tls_client_auth_san_uri', 'not a uri');
  client('tls_client_certificate_bound_access_tokens', 'yes');
  client('require_pushed_authorization_requests', 1);
  client('token_endpoint_auth_method', 42);
  client('scope', 'api:read  api:write');
  client('scope', 'api:read\u0000');
  client('scope', 'a "quoted" scope');
  client('scope', 123);
  client('token_mode', 'opaque');
  client('token_mode', 'JWT');
  client('token_mode', 1);
  client('application_type', 'desktop');
  client('client_uri', 'not a uri');
  client('jwks', { keys: 'x' });
  client('jwks', 'keys');
  client(
    'contacts',
    Array.from({ length: 21 }, (_, i) => `c${i}@example.com`),
  );
  client('contacts', ['']);
  client('default_max_age', -1);
  client('default_max_age', 1.5);
  client('default_max_age', '10');
  client('require_auth_time', 'yes');
  client('id_token_signed_response_alg', 'HS256');
  client('id_token_signed_response_alg', 'none');
  client('client_id', 'has space');
  client('client_id', '');
  client('client_id', repeat(129, 'c'));
  client('introspection_audiences', 'https://api.example.com');
  client('introspection_audiences', [1]);
  client('require_pkce', 'no');
  const again = { client_id: fx.fixedClientId, client_name: 'again', grant_types: ['client_credentials'], response_types: [] };
  add('POST /clients: a client_id that is taken', A('POST', '/clients', again), problem({ status: 409 }));
  const patch = (name: string, value: unknown) => field('PATCH /clients/{id}', 'PATCH', `/clients/${fx.patchClient.client_id}`, { [name]: value }, name);
  patch('token_mode', 'opaque');
  patch('redirect_uris', ['http://app.example.com/cb']);
  patch('grant_types', ['password']);
  patch('client_name', 7);
  patch('scope', 'a\u0001b');
  patch('client_id', 'renamed');
  // Each with its own username: one wrongly accepted must not turn the next into a 409.
  let users = 0;
  const user = (name: string, value: unknown) =>
    field('POST /users', 'POST', '/users', { username: `campaign-user-${++users}`, password: 'long enough password', [name]: value }, name);
  field('POST /users', 'POST', '/users', { password: 'long enough password' }, 'username');
  field('POST /users', 'POST', '/users', { username: 'campaign-user' }, 'password');
  user('password', 'short');
  user('password', repeat(1025, 'p'));
  user('password', 12345678);
  user('username', 'has space');
  user('username', '');
  user('username', repeat(101, 'u'));
  user('username', 42);
  user('username', 'a\u0000b');
  user('username', '\u202eadmin');
  user('email', 'not-an-email');
  user('email', 42);
  user('email', 'a\u0000@example.com');
  user('name', '');
  user('name', repeat(201, 'n'));
  user('name', 'a\u0000b');
  user('name', 'a\u0007b');
  user('name', 42);
  user('roles', 'admin');
  user('roles', [1]);
  user('is_admin', true);
  const taken = { username: fx.patchUser.username, password: 'long enough password' };
  add('POST /users: a username that is taken', A('POST', '/users', taken), problem({ status: 409 }));
  const patchUser = (name: string, value: unknown) => field('PATCH /users/{id}', 'PATCH', `/users/${fx.patchUser.id}`, { [name]: value }, name, [400, 404]);
  patchUser('disabled', 'yes');
  patchUser('password', 'short');
  patchUser('email', 1);
  patchUser('roles', 'admin');
  patchUser('name', 'a\u0000b');
  patchUser('username', 'renamed');
  const revoke = (body: Record<string, unknown>, name: string) => field('POST /revocations', 'POST', '/revocations', body, name);
  add('POST /revocations: an empty object', A('POST', '/revocations', {}), problem({ status: 400 }));
  revoke({ subject: '' }, 'subject');
  revoke({ subject: 1 }, 'subject');
  revoke({ subject: 'a\u0000b' }, 'subject');
  revoke({ subject: repeat(201, 's') }, 'subject');
  revoke({ subject: { $ne: null } }, 'subject');
  revoke({ client_id: [] }, 'client_id');
  revoke({ client_id: 'a\u001bb' }, 'client_id');
  revoke({ grant_id: null }, 'grant_id');
  revoke({ grant_id: true }, 'grant_id');
  revoke({ subject: 'x', everything: true }, 'everything');
  const prune = (value: unknown) => field('POST /prune', 'POST', '/prune', { older_than_seconds: value }, 'older_than_seconds');
  prune(-1);
  prune('soon');
  prune('86400');
  prune(1.5);
  prune(1e15);
  prune(true);
  prune(null);
  prune([86_400]);
  field('POST /prune', 'POST', '/prune', { everything: true }, 'everything');

  // Queries of the lists.
  for (const list of ['/clients', '/users', '/tokens', '/audit']) {
    const cursor = (value: unknown) => encodeURIComponent(b64url(value));
    const queries: Record<string, string> = {
      'limit=0': 'limit=0',
      'limit=201': 'limit=201',
      'limit=-1': 'limit=-1',
      'limit=abc': 'limit=abc',
      'limit=1.5': 'limit=1.5',
      'limit=1e2': 'limit=1e2',
      'limit with spaces': 'limit=%205',
      'an empty limit': 'limit=',
      'limit of 400 digits': `limit=${repeat(400, '9')}`,
      'limit twice': 'limit=1&limit=2',
      'a cursor that is not base64url JSON': 'cursor=!!!',
      'a cursor of {}': `cursor=${cursor({})}`,
      'a cursor whose date is 1e300': `cursor=${cursor([1e300, 'x'])}`,
      'a cursor with its fields swapped': `cursor=${cursor(['x', 1])}`,
      'a cursor of one element': `cursor=${cursor([0])}`,
      'a cursor of 10 KB': `cursor=${repeat(10_000, 'c')}`,
      'cursor twice': `cursor=${cursor([0, 'a'])}&cursor=${cursor([0, 'b'])}`,
      'invalid percent-encoding in the query': 'limit=%ZZ&cursor=%E0%A4%A',
    };
    for (const [kind, query] of Object.entries(queries)) add(`GET ${list} with ${kind}`, A('GET', `${list}?${query}`), problem({ status: [400, 404] }));
  }
  const listOk = okOr(
    problem({ status: 400 }),
    jsonWith('{items: []}', (b) => Array.isArray(b?.items)),
  );
  add('GET /tokens with status=bogus', A('GET', '/tokens?status=bogus'), problem({ status: 400, field: 'status' }));
  add('GET /tokens with type=id_token', A('GET', '/tokens?type=id_token'), problem({ status: 400, field: 'type' }));
  add('GET /tokens with an empty subject', A('GET', '/tokens?subject='), problem({ status: 400, field: 'subject' }));
  add('GET /tokens with a subject of 201 characters', A('GET', `/tokens?subject=${repeat(201, 's')}`), problem({ status: 400, field: 'subject' }));
  add('GET /tokens with status twice', A('GET', '/tokens?status=valid&status=revoked'), problem({ status: 400, field: 'status' }));
  add('GET /tokens with client_id twice', A('GET', '/tokens?client_id=a&client_id=b'), problem({ status: 400, field: 'client_id' }));
  add('GET /tokens with a subject holding a NUL', A('GET', '/tokens?subject=a%00b'), listOk);
  add('GET /tokens with a client_id holding a NUL', A('GET', '/tokens?client_id=%00'), listOk);
  add('GET /tokens with a subject that is not UTF-8', A('GET', '/tokens?subject=%FF%FE'), listOk);
  // A search for text no user has: refused, or an empty list (the users list is not served everywhere yet: 404 then).
  const search = okOr(
    problem({ status: [400, 404] }),
    jsonWith('{items: []}', (b) => Array.isArray(b?.items)),
  );
  add('GET /users with q holding a NUL', A('GET', '/users?q=a%00b'), search);
  add('GET /users with q of 10 KB', A('GET', `/users?q=${repeat(10_000, 'q')}`), search);
  add('GET /users with q twice', A('GET', '/users?q=a&q=b'), search);

  // Ids in paths.
  const idRoutes: [string, string, unknown?][] = [
    ['GET', '/clients/{id}'],
    ['PATCH', '/clients/{id}', { client_name: 'x' }],
    ['DELETE', '/clients/{id}'],
    ['POST', '/clients/{id}/secret'],
    ['GET', '/users/{id}'],
    ['PATCH', '/users/{id}', { name: 'x' }],
    ['DELETE', '/users/{id}'],
    ['POST', '/users/{id}/unlock'],
    ['DELETE', '/users/{id}/factors'],
    ['GET', '/tokens/{id}'],
    ['POST', '/tokens/{id}/revoke'],
  ];
  const ids: Record<string, [string, number | number[]]> = {
    'an unknown id': ['no-such-id', 404],
    'an id that does not percent-decode': ['%E0%A4%A', [400, 404]],
    'an id holding a NUL': ['a%00b', [400, 404]],
    'an id of 10 KB': [repeat(10_000, 'i'), [400, 404, 414]],
    'an id with a right-to-left override': ['%E2%80%AEdi', 404],
    'an id climbing out with ../': ['..%2F..%2Fclients', [400, 404]],
    'an id of control characters': ['%1B%5B31m%0D%0A', [400, 404]],
  };
  for (const [method, route, body] of idRoutes) {
    for (const [kind, [id, status]] of Object.entries(ids)) {
      add(`${method} ${route} with ${kind}`, A(method, route.replace('{id}', id), body), problem({ status }));
    }
  }
  add('POST /clients/{id}/secret of a public client', A('POST', `/clients/${fx.device.client_id}/secret`), problem({ status: 409 }));

  // Routes and methods that are not there.
  add('an unknown route', A('GET', '/nothing-here'), problem({ status: 404 }));
  add('PUT /clients', A('PUT', '/clients', { client_name: 'x' }), problem({ status: [404, 405] }));
  add('DELETE /clients (no id)', A('DELETE', '/clients'), problem({ status: [404, 405] }));
  add('POST /audit', A('POST', '/audit', {}), problem({ status: [404, 405] }));
  add('PATCH /prune', A('PATCH', '/prune', {}), problem({ status: [404, 405] }));
  add('GET /admin/%ZZ', A('GET', '/%ZZ'), problem({ status: [400, 404] }));
  add('an unknown route without credentials', A('GET', '/nothing-here', undefined, { authorization: undefined }), problem({ status: [401, 404] }));
  add('POST /openapi.json', A('POST', '/openapi.json', {}), problem({ status: [404, 405] }));
  return cases;
}

function rawCases(): Case[] {
  const host = `localhost:${port}`;
  const key = `Authorization: Bearer ${ADMIN_KEY}\r\n`;
  const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n`;
  const postToken = (headers = '', body = '') =>
    `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${FORM}\r\nContent-Length: ${body.length}\r\n${headers}\r\n${body}`;
  const discovery = '/.well-known/openid-configuration';
  const toDiscovery = (headers: string) => `GET ${discovery} HTTP/1.1\r\n${headers}\r\n`;
  const json = rawAnswer({ mustAnswer: true, shape: oauth() });
  // What node's parser refuses is answered by src/http/malformed-http.ts in the shape of the endpoint named.
  const refusedOAuth = (status: number) => rawAnswer({ mustAnswer: true, shape: oauth({ status, error: 'invalid_request' }) });
  const refusedProblem = (status: number) => rawAnswer({ mustAnswer: true, shape: problem({ status, code: 'invalid_request' }) });
  const manyHeaders = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
  const kinds: Record<string, { raw: string | Buffer; responses?: number; expect?: RawCheck }> = {
    'an unknown method': { raw: `FOO /token HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'a method in lower case': { raw: `get /token HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'an odd but known method (PROPFIND)': { raw: `PROPFIND /token HTTP/1.1\r\nHost: ${host}\r\n\r\n`, expect: json },
    TRACE: { raw: `TRACE /token HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    CONNECT: { raw: `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'OPTIONS *': { raw: `OPTIONS * HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'HTTP/9.9': { raw: `GET /token HTTP/9.9\r\nHost: ${host}\r\n\r\n` },
    'HTTP/2.0 in an HTTP/1 request line': { raw: `GET /token HTTP/2.0\r\nHost: ${host}\r\n\r\n` },
    'the HTTP/2 connection preface': { raw: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' },
    'no HTTP version': { raw: 'GET /token\r\n\r\n' },
    'a method alone': { raw: 'GET\r\n\r\n' },
    'tabs between the parts of the request line': { raw: `GET\t/token\tHTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'a space inside the path': { raw: `GET /to ken HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'raw UTF-8 bytes in the path': { raw: Buffer.from(`GET /t\u00f6ken HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 'utf8') },
    'a NUL in the path': { raw: `GET /to\u0000ken HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'an absolute URL naming another host': { raw: `GET http://evil.example/token HTTP/1.1\r\nHost: ${host}\r\n\r\n` },
    'no Host header': { raw: 'GET /token HTTP/1.1\r\n\r\n' },
    'two Host headers (token endpoint)': {
      raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n`,
      expect: rawAnswer({ statuses: [400] }),
    },
    'two Host headers (discovery)': { raw: toDiscovery(`Host: ${host}\r\nHost: ${host}\r\n`), expect: rawAnswer({ statuses: [400] }) },
    'two Host headers (admin)': {
      raw: `GET /admin/clients HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\n${key}\r\n`,
      expect: rawAnswer({ statuses: [400] }),
    },
    'two Host headers (interaction page)': {
      raw: `GET /interaction/x HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\n\r\n`,
      expect: rawAnswer({ statuses: [400] }),
    },
    'two Host headers (health)': { raw: `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\n\r\n`, expect: rawAnswer({ statuses: [400] }) },
    // URLs are built from ISSUER and forwarded headers are believed only from TRUST_PROXY: whatever a caller
    // puts in Host or X-Forwarded-* is ignored, malformed or not.
    'a Host with a space': { raw: toDiscovery('Host: local host\r\n'), expect: rawAnswer({ statuses: [200] }) },
    'a Host that is an unclosed IPv6 literal': { raw: toDiscovery('Host: [::\r\n'), expect: rawAnswer({ statuses: [200] }) },
    'a Host with port 99999': { raw: toDiscovery('Host: localhost:99999\r\n'), expect: rawAnswer({ statuses: [200] }) },
    'a Host with a NUL': { raw: toDiscovery('Host: local\u0000host\r\n') },
    'a Host of 10 KB': { raw: toDiscovery(`Host: ${repeat(10_000, 'h')}:80:80\r\n`), expect: rawAnswer({ statuses: [200] }) },
    'X-Forwarded-Proto ,,,': { raw: toDiscovery(`Host: ${host}\r\nX-Forwarded-Proto: ,,,\r\n`), expect: rawAnswer({ statuses: [200] }) },
    'X-Forwarded-Proto with a space': {
      raw: toDiscovery(`Host: ${host}\r\nX-Forwarded-Proto: ht tp\r\n`),
      expect: rawAnswer({ statuses: [200] }),
    },
    'X-Forwarded-Proto twice, the first empty': {
      raw: toDiscovery(`Host: ${host}\r\nX-Forwarded-Proto:\r\nX-Forwarded-Proto: ht tp\r\n`),
      expect: rawAnswer({ statuses: [200] }),
    },
    'X-Forwarded-Host with a space': { raw: toDiscovery(`Host: ${host}\r\nX-Forwarded-Host: a b\r\n`), expect: rawAnswer({ statuses: [200] }) },
    'X-Forwarded-Host an unclosed IPv6 literal': {
      raw: toDiscovery(`Host: ${host}\r\nX-Forwarded-Host: [::\r\n`),
      expect: rawAnswer({ statuses: [200] }),
    },
    'X-Forwarded-Host with a port past 65535': {
      raw: toDiscovery(`Host: ${host}\r\nX-Forwarded-Host: a:70000\r\n`),
      expect: rawAnswer({ statuses: [200] }),
    },
    'X-Forwarded-For garbage on a bad token request': { raw: postToken('X-Forwarded-For: not-an-ip, ::::, 999.1.1.1\r\n'), expect: json },
    'X-Forwarded-Proto ,,, at the token endpoint': { raw: postToken('X-Forwarded-Proto: ,,,\r\n'), expect: json },
    'X-Forwarded-Proto ,,, at the authorization endpoint': { raw: get('/auth?client_id=x', 'X-Forwarded-Proto: ,,,\r\n') },
    'X-Forwarded-Proto ,,, at end-session': { raw: get('/session/end', 'X-Forwarded-Proto: ,,,\r\n'), expect: rawAnswer({ statuses: [200] }) },
    'X-Forwarded-Proto ,,, at the device page': { raw: get('/device', 'X-Forwarded-Proto: ,,,\r\n'), expect: rawAnswer({ statuses: [200] }) },
    'X-Forwarded-Host with a space at userinfo': { raw: get('/me', 'X-Forwarded-Host: a b\r\n'), expect: json },
    'both Content-Length and Transfer-Encoding': {
      raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${FORM}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    },
    'both Content-Length and Transfer-Encoding (smuggled request)': {
      raw:
        `POST /admin/prune HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n` +
        '0\r\n\r\nGET /admin/clients HTTP/1.1\r\nHost: x\r\n\r\n',
    },
    'Transfer-Encoding then Content-Length': {
      raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nA\r\n0\r\n\r\n`,
    },
    'two different Content-Lengths': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef` },
    'a negative Content-Length': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Length: -1\r\n\r\n` },
    'a Content-Length that is not a number': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1e3\r\n\r\n` },
    'a Content-Length of 99,999,999,999': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${FORM}\r\nContent-Length: 99999999999\r\n\r\n` },
    'Transfer-Encoding gzip alone': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: gzip\r\n\r\nabc` },
    'Transfer-Encoding chunked twice': {
      raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    },
    'Transfer-Encoding with a stray token': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n` },
    'a chunk size that is not hex': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n` },
    'a chunk size past 64 bits': { raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n` },
    'an unterminated chunk extension': {
      raw: `POST /token HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\n5;ext="open\r\nscope\r\n0\r\n\r\n`,
    },
    'a folded header line': { raw: `GET /token HTTP/1.1\r\nHost: ${host}\r\nX-A: a\r\n folded\r\n\r\n` },
    'a header line without a colon': { raw: `GET /token HTTP/1.1\r\nHost: ${host}\r\nNo-Colon\r\n\r\n`, expect: refusedOAuth(400) },
    'a header name with a space': { raw: `GET /token HTTP/1.1\r\nHost: ${host}\r\nBad Name: v\r\n\r\n` },
    'a NUL in a header value': { raw: `GET /token HTTP/1.1\r\nHost: ${host}\r\nX-A: a\u0000b\r\n\r\n` },
    'a NUL in Authorization at the admin API': {
      raw: `GET /admin/clients HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${ADMIN_KEY}\u0000\r\n\r\n`,
      expect: refusedProblem(400),
    },
    'a CR alone inside a header value': { raw: `GET /token HTTP/1.1\r\nHost: ${host}\r\nX-A: a\rb\r\n\r\n` },
    'bare LF line endings': { raw: `GET /token HTTP/1.1\nHost: ${host}\n\n` },
    'a 20 KB header': { raw: get('/token', `X-Flood: ${repeat(20_000, 'f')}\r\n`), expect: refusedOAuth(431) },
    'a 20 KB header at the admin API': { raw: get('/admin/clients', `${key}X-Flood: ${repeat(20_000, 'f')}\r\n`), expect: refusedProblem(431) },
    '1,000 headers within the size limit': { raw: postToken(manyHeaders(1000)), expect: json },
    '3,000 headers past the size limit': { raw: postToken(manyHeaders(3000)), expect: refusedOAuth(431) },
    'a 20 KB URL': { raw: get(`/token?${repeat(20_000, 'u')}`) },
    'a 12 KB URL within the limit': { raw: get(`/token?x=${repeat(12_000, 'u')}`), expect: json },
    'a 12 KB URL at the admin API': {
      raw: get(`/admin/tokens?subject=${repeat(12_000, 's')}`, key),
      expect: rawAnswer({ mustAnswer: true, shape: problem() }),
    },
    'Expect: something unknown': { raw: get('/token', 'Expect: teapot\r\n') },
    'Upgrade to h2c on a bad token request': {
      raw: postToken('Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n'),
      expect: json,
    },
    'Upgrade to websocket at the token endpoint': { raw: get('/token', 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n') },
    'pipelined: health, an unserved path, a bad token request': {
      raw: `${get('/healthz')}${get('/token')}${postToken()}`,
      responses: 3,
      expect: rawAnswer({ statuses: [200, 404, 400] }),
    },
    'pipelined: 20 bad token requests': { raw: repeat(20, postToken()), responses: 20, expect: rawAnswer({ statuses: Array(20).fill(400) }) },
    'pipelined: 10 admin requests with a wrong key': {
      raw: repeat(10, get('/admin/clients', 'Authorization: Bearer wrong\r\n')),
      responses: 10,
      expect: rawAnswer({ statuses: Array(10).fill(401) }),
    },
    'pipelined: a good request, then malformed HTTP': {
      raw: `${get('/healthz')}BAD REQUEST LINE\r\n\r\n`,
      responses: 2,
      expect: (a) => {
        if (a.responses[0]?.status !== 200) return `first answer ${a.responses[0]?.statusLine}, expected 200`;
        return rawAnswer()({ ...a, responses: a.responses.slice(1) });
      },
    },
    'pipelined: a bad request, then one with two Host headers': {
      raw: `${postToken()}GET /healthz HTTP/1.1\r\nHost: ${host}\r\nHost: b\r\n\r\n`,
      responses: 2,
      expect: rawAnswer({ statuses: [400, 400] }),
    },
    'HTTP/1.0 without a Host': { raw: 'GET /token HTTP/1.0\r\n\r\n', expect: json },
    'a body on a GET to discovery with a bad Content-Length': { raw: toDiscovery(`Host: ${host}\r\nContent-Length: abc\r\n`) },
    'leading empty lines, then a malformed request': { raw: '\r\n\r\nGARBAGE\r\n\r\n' },
    'a request line of random bytes': { raw: Buffer.concat([seededBytes(SEED + 1, 200), Buffer.from('\r\n\r\n')]) },
    'a TLS ClientHello on the plain port': { raw: Buffer.from(`16030100a5010000a10303${'00'.repeat(64)}`, 'hex') },
  };
  return Object.entries(kinds).map(([kind, { raw, responses, expect }]) => ({
    name: `http (raw socket): ${kind}`,
    request: { raw, responses },
    expect: expect ?? rawAnswer(),
    raw: true,
  }));
}

function otherCases(fx: Fixtures): Case[] {
  const discovery = '/.well-known/openid-configuration';
  const d = (headers: HeaderMap, path = discovery, method = 'GET') => ({ method, path, headers }) satisfies HttpRequest;
  const kinds: Record<string, { request: HttpRequest; expect: Check }> = {
    // Forwarded headers and Host are ignored (URLs come from ISSUER): junk in them changes nothing.
    'discovery with X-Forwarded-Proto ,,,': { request: d({ 'x-forwarded-proto': ',,,' }), expect: ownUrls },
    'discovery with X-Forwarded-Proto ", https"': { request: d({ 'x-forwarded-proto': ', https' }), expect: ownUrls },
    'discovery with X-Forwarded-Proto with a space': { request: d({ 'x-forwarded-proto': 'ht tp' }), expect: ownUrls },
    'discovery with X-Forwarded-Host with a space': { request: d({ 'x-forwarded-host': 'a b' }), expect: ownUrls },
    'discovery with X-Forwarded-Host [::': { request: d({ 'x-forwarded-host': '[::' }), expect: ownUrls },
    'discovery with Host [::': { request: d({ host: '[::' }), expect: ownUrls },
    'JWKS with X-Forwarded-Proto ,,,': { request: d({ 'x-forwarded-proto': ',,,' }, '/jwks'), expect: jsonWith('the keys', (b) => Array.isArray(b?.keys)) },
    'the token endpoint with X-Forwarded-Host [::': {
      request: d({ 'x-forwarded-host': '[::' }, '/token', 'POST'),
      expect: oauth({ status: 400, error: 'invalid_request' }),
    },
    'introspection with X-Forwarded-Proto ,,,': {
      request: formPost('/token/introspection', 'token=x', { authorization: basic(fx.web), 'x-forwarded-proto': ',,,' }),
      expect: jsonWith('active: false', (b) => b?.active === false),
    },
    'POST to discovery': { request: d({}, discovery, 'POST'), expect: oauth({ status: [404, 405] }) },
    'POST to JWKS': { request: d({}, '/jwks', 'POST'), expect: oauth({ status: [404, 405] }) },
    'an unknown .well-known document': { request: d({}, '/.well-known/nothing'), expect: oauth({ status: 404 }) },
    'a path that does not percent-decode': { request: d({}, '/%E0%A4%A'), expect: oauth({ status: [400, 404] }) },
    'a path with a NUL': { request: d({}, '/token%00'), expect: oauth({ status: [400, 404] }) },
    'a path of dot segments': { request: d({}, '/../../etc/passwd'), expect: oauth({ status: [400, 404] }) },
    'POST /healthz': { request: d({}, '/healthz', 'POST'), expect: oauth({ status: [404, 405] }) },
    'POST /readyz': { request: d({}, '/readyz', 'POST'), expect: oauth({ status: [404, 405] }) },
    'DELETE /metrics': { request: d({}, '/metrics', 'DELETE'), expect: oauth({ status: [404, 405] }) },
    'GET /healthz/extra': { request: d({}, '/healthz/extra'), expect: oauth({ status: 404 }) },
  };
  return Object.entries(kinds).map(([kind, c]) => ({ name: `discovery and others: ${kind}`, ...c }));
}

// ---------------------------------------------------------------------------------------------------
// The mutation pass

const UNICODE = ['\u202e', '\ufeff', '\u0301', '😀', 'ｇ', '\u2028', 'é', '\uffff', '\u0000'];
const BAD_UTF8 = [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xfe, 0xff], [0x80], [0xf4, 0x90, 0x80, 0x80]];
const CONTROLS = ['\u0000', '\r\n', '\t', '\u001b[31m', '\u007f', '\u0008', '\r'];
const PERCENT = ['%', '%Z', '%ZZ', '%E0%A4%A', '%C0%AF', '%FF', '%%', '%u0041', '%00', '%0D%0A', '%2', '+%'];
const WRONG_VALUES: unknown[] = [0, -1, 1.5, 1e308, true, false, null, [], {}, '', 'text', [1, 2], { a: 1 }, ['x'], -0];
const WRONG_FORM_VALUES = ['[]', '{}', 'null', 'true', '-1', '1e309', '0x10', 'NaN', '[object Object]', 'undefined'];
const HUGE = [1000, 20_000, 70_000, 120_000];

const insertAt = (b: Buffer, at: number, piece: Buffer) => Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);

/** One byte-level mutation of a body. */
function mutateBytes(rng: Rng, body: Buffer, separator: string): [string, Buffer] {
  const at = below(rng, body.length + 1);
  const copy = Buffer.from(body);
  const op = pick(rng, ['flip-bit', 'random-byte', 'truncate', 'delete-range', 'unicode', 'invalid-utf8', 'control', 'percent', 'repeat', 'huge'] as const);
  switch (op) {
    case 'flip-bit': {
      const i = Math.min(at, body.length - 1);
      const bit = below(rng, 8);
      copy[i] = copy[i]! ^ (1 << bit);
      return [`${op}@${i}.${bit}`, copy];
    }
    case 'random-byte': {
      const i = Math.min(at, body.length - 1);
      copy[i] = below(rng, 256);
      return [`${op}@${i}=${copy[i]}`, copy];
    }
    case 'truncate':
      return [`${op}@${at}`, body.subarray(0, at)];
    case 'delete-range': {
      const n = 1 + below(rng, 16);
      return [`${op}@${at}+${n}`, Buffer.concat([body.subarray(0, at), body.subarray(at + n)])];
    }
    case 'unicode': {
      const u = pick(rng, UNICODE);
      return [`${op}@${at}:U+${u.codePointAt(0)!.toString(16)}`, insertAt(body, at, Buffer.from(u))];
    }
    case 'invalid-utf8': {
      const bytes = pick(rng, BAD_UTF8);
      return [`${op}@${at}:${Buffer.from(bytes).toString('hex')}`, insertAt(body, at, Buffer.from(bytes))];
    }
    case 'control': {
      const c = pick(rng, CONTROLS);
      return [`${op}@${at}:${JSON.stringify(c)}`, insertAt(body, at, Buffer.from(c))];
    }
    case 'percent': {
      const p = pick(rng, PERCENT);
      return [`${op}@${at}:${p}`, insertAt(body, at, Buffer.from(p))];
    }
    case 'repeat':
      return [op, Buffer.concat([body, Buffer.from(separator), body])];
    case 'huge': {
      const n = pick(rng, HUGE);
      return [`${op}@${at}:${n}`, insertAt(body, at, Buffer.from(repeat(n, 'x')))];
    }
  }
}

/** One structural mutation of a form body. */
function mutateForm(rng: Rng, params: [string, string][]): [string, string] {
  const p = params.map(([k, v]) => [k, v] as [string, string]);
  const i = below(rng, p.length);
  const [name, value] = p[i]!;
  const op = pick(rng, [
    'duplicate',
    'duplicate-other',
    'drop',
    'empty',
    'huge',
    'array-name',
    'object-name',
    'upper-name',
    'swap',
    'wrong-type',
    'unicode',
    'nul',
    'separators',
    'encode-twice',
    'padding',
  ] as const);
  switch (op) {
    case 'duplicate':
      return [`${op}:${name}`, qs([...p, [name, value]])];
    case 'duplicate-other':
      return [`${op}:${name}`, qs([...p, [name, `${value}x`]])];
    case 'drop':
      return [`${op}:${name}`, qs(p.filter((_, j) => j !== i))];
    case 'empty':
      p[i] = [name, ''];
      return [`${op}:${name}`, qs(p)];
    case 'huge': {
      const n = pick(rng, HUGE);
      p[i] = [name, repeat(n, 'x')];
      return [`${op}:${name}:${n}`, qs(p)];
    }
    case 'array-name':
      p[i] = [`${name}[]`, value];
      return [`${op}:${name}`, qs(p)];
    case 'object-name':
      p[i] = [`${name}[a]`, value];
      return [`${op}:${name}`, qs(p)];
    case 'upper-name':
      p[i] = [name.toUpperCase(), value];
      return [`${op}:${name}`, qs(p)];
    case 'swap': {
      const j = below(rng, p.length);
      p[i] = [name, p[j]![1]];
      p[j] = [p[j]![0], value];
      return [`${op}:${name}<>${p[j]![0]}`, qs(p)];
    }
    case 'wrong-type': {
      const w = pick(rng, WRONG_FORM_VALUES);
      p[i] = [name, w];
      return [`${op}:${name}=${w}`, qs(p)];
    }
    case 'unicode': {
      const u = pick(rng, UNICODE);
      p[i] = [name, `${u}${value}`];
      return [`${op}:${name}:U+${u.codePointAt(0)!.toString(16)}`, qs(p)];
    }
    case 'nul':
      p[i] = [name, `${value}\u0000`];
      return [`${op}:${name}`, qs(p)];
    case 'separators': {
      const sep = pick(rng, [';', '&&', '&=&', '\n', '&amp;']);
      return [`${op}:${JSON.stringify(sep)}`, p.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join(sep)];
    }
    case 'encode-twice':
      return [op, encodeURIComponent(qs(p))];
    case 'padding':
      p[i] = [name, ` ${value} `];
      return [`${op}:${name}`, qs(p)];
  }
}

/** One structural mutation of a JSON body (returned as text). */
function mutateJson(rng: Rng, valid: Record<string, unknown>): [string, string] {
  const o: Record<string, unknown> = structuredClone(valid);
  const keys = Object.keys(o);
  const k = pick(rng, keys);
  const op = pick(rng, [
    'wrong-type',
    'duplicate-key',
    'drop-key',
    'unknown-key',
    'huge-string',
    'unicode-string',
    'nest-array',
    'nest-object',
    'number-edge',
    'wrap-array',
    'empty-object',
    'null-body',
  ] as const);
  switch (op) {
    case 'wrong-type': {
      const w = pick(rng, WRONG_VALUES);
      o[k] = w;
      return [`${op}:${k}=${JSON.stringify(w)}`, JSON.stringify(o)];
    }
    case 'duplicate-key':
      return [`${op}:${k}`, JSON.stringify(o).replace('{', `{"${k}":${JSON.stringify(o[k])},`)];
    case 'drop-key':
      delete o[k];
      return [`${op}:${k}`, JSON.stringify(o)];
    case 'unknown-key':
      o[`x_${below(rng, 1000)}`] = 1;
      return [op, JSON.stringify(o)];
    case 'huge-string': {
      const n = pick(rng, HUGE);
      o[k] = repeat(n, 'x');
      return [`${op}:${k}:${n}`, JSON.stringify(o)];
    }
    case 'unicode-string': {
      const u = pick(rng, ['\u0000', '\ud800', '😀', '\u202e', 'a\u0000b', '\u0007', '\udfff\ud800', '\u2028']);
      o[k] = typeof o[k] === 'string' ? `${o[k]}${u}` : u;
      return [`${op}:${k}:${JSON.stringify(u)}`, JSON.stringify(o)];
    }
    case 'nest-array':
      o[k] = [o[k]];
      return [`${op}:${k}`, JSON.stringify(o)];
    case 'nest-object':
      o[k] = { value: o[k] };
      return [`${op}:${k}`, JSON.stringify(o)];
    case 'number-edge': {
      const n = pick(rng, ['1e400', '-0', '9007199254740993', '0.0000001', '-1e-400', '1E2', '00012']);
      return [`${op}:${k}=${n}`, JSON.stringify(o).replace(`"${k}":${JSON.stringify(o[k])}`, `"${k}":${n}`)];
    }
    case 'wrap-array':
      return [op, JSON.stringify([o])];
    case 'empty-object':
      return [op, '{}'];
    case 'null-body':
      return [op, 'null'];
  }
}

interface MutationBase {
  label: string;
  method: string;
  path: string;
  headers: HeaderMap;
  form?: [string, string][];
  json?: Record<string, unknown>;
  count: number;
  expect: Check;
}

function mutationCases(rng: Rng, bases: MutationBase[]): Case[] {
  const cases: Case[] = [];
  for (const base of bases) {
    const valid = base.form ? qs(base.form) : JSON.stringify(base.json);
    for (let i = 0; i < base.count; i++) {
      let what: string;
      let body: string | Buffer;
      if (rng() < 0.5) [what, body] = mutateBytes(rng, Buffer.from(valid), base.form ? '&' : '');
      else [what, body] = base.form ? mutateForm(rng, base.form) : mutateJson(rng, base.json!);
      const request: HttpRequest =
        base.method === 'GET'
          ? { method: 'GET', path: `${base.path}?${escapeForPath(body)}`, headers: base.headers }
          : { method: base.method, path: base.path, headers: base.headers, body };
      cases.push({ name: `mutation: ${base.label} #${String(i).padStart(3, '0')} ${what}`, request, expect: base.expect });
    }
  }
  return cases;
}

/** Bytes node:http will not put in a request target, percent-encoded (the rest kept as mutated). */
function escapeForPath(body: string | Buffer): string {
  const escapeByte = (b: number) => (b > 0x20 && b < 0x7f && b !== 0x23 ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`);
  return [...Buffer.from(body)].map(escapeByte).join('');
}

function mutationBases(fx: Fixtures): MutationBase[] {
  const { web, poster, workers } = fx;
  const form = { 'content-type': FORM };
  const json = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` };
  const tokenOk = okOr(
    oauth(),
    jsonWith('an access_token', (b) => typeof b?.access_token === 'string'),
  );
  const introspectionOk = okOr(
    oauth(),
    jsonWith('a boolean "active"', (b) => typeof b?.active === 'boolean'),
  );
  const revocationDone = okOr(oauth(), revocationOk);
  const adminOk = okOr(problem(), (a) => {
    if (a.status === 204 || (/json/.test(contentType(a)) && typeof parseJson(a.text) === 'object')) return undefined;
    return `2xx without JSON: ${a.text.slice(0, 80)}`;
  });
  return [
    {
      label: 'token (Basic)',
      method: 'POST',
      path: '/token',
      headers: { ...form, authorization: basic(web) },
      form: [
        ['grant_type', 'client_credentials'],
        ['scope', 'api:read'],
      ],
      count: 45,
      expect: tokenOk,
    },
    {
      label: 'token (client_secret_post)',
      method: 'POST',
      path: '/token',
      headers: form,
      form: [
        ['grant_type', 'client_credentials'],
        ['client_id', poster.client_id],
        ['client_secret', poster.client_secret!],
        ['scope', 'api:read'],
      ],
      count: 40,
      expect: tokenOk,
    },
    {
      label: 'token (refresh grant)',
      method: 'POST',
      path: '/token',
      headers: { ...form, authorization: basic(web) },
      form: [
        ['grant_type', 'refresh_token'],
        ['refresh_token', 'campaign-unknown-refresh-token-0123456789ab'],
      ],
      count: 20,
      expect: okOr(oauth(), (a) => `a made-up refresh token was accepted: ${a.text.slice(0, 80)}`),
    },
    {
      label: 'introspection (Basic, a live token)',
      method: 'POST',
      path: '/token/introspection',
      headers: { ...form, authorization: basic(workers.reference.client) },
      form: [
        ['token', workers.reference.token],
        ['token_type_hint', 'access_token'],
      ],
      count: 40,
      expect: introspectionOk,
    },
    {
      label: 'introspection (client_secret_post, a jwt)',
      method: 'POST',
      path: '/token/introspection',
      headers: form,
      form: [
        ['token', workers.jwt.token],
        ['client_id', poster.client_id],
        ['client_secret', poster.client_secret!],
      ],
      count: 30,
      expect: introspectionOk,
    },
    {
      label: 'revocation (client_secret_post)',
      method: 'POST',
      path: '/token/revocation',
      headers: form,
      form: [
        ['token', fx.sacrificial],
        ['token_type_hint', 'access_token'],
        ['client_id', poster.client_id],
        ['client_secret', poster.client_secret!],
      ],
      count: 40,
      expect: revocationDone,
    },
    {
      label: 'admin POST /clients',
      method: 'POST',
      path: '/admin/clients',
      headers: json,
      json: { client_name: 'mutant', grant_types: ['client_credentials'], response_types: [], scope: 'api:read', token_mode: 'jwt' },
      count: 35,
      expect: adminOk,
    },
    {
      label: 'admin PATCH /clients/{id}',
      method: 'PATCH',
      path: `/admin/clients/${fx.patchClient.client_id}`,
      headers: json,
      json: { client_name: 'patched', token_mode: 'stateless', scope: 'api:read' },
      count: 25,
      expect: adminOk,
    },
    {
      label: 'admin POST /users',
      method: 'POST',
      path: '/admin/users',
      headers: json,
      json: { username: 'mutant', password: 'correct horse battery', email: 'm@example.com', name: 'M' },
      count: 30,
      expect: adminOk,
    },
    {
      label: 'admin POST /revocations',
      method: 'POST',
      path: '/admin/revocations',
      headers: json,
      json: { subject: 'campaign-nobody', grant_id: 'campaign-no-grant' },
      count: 25,
      expect: adminOk,
    },
    { label: 'admin POST /prune', method: 'POST', path: '/admin/prune', headers: json, json: { older_than_seconds: 86_400 }, count: 20, expect: adminOk },
    {
      label: 'admin GET /tokens query',
      method: 'GET',
      path: '/admin/tokens',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
      form: [
        ['subject', 'campaign-nobody'],
        ['status', 'valid'],
        ['type', 'access_token'],
        ['limit', '5'],
      ],
      count: 25,
      // A URL past node's limit is refused by node itself (431), before Tally sees it.
      expect: anyOf(
        okOr(
          problem(),
          jsonWith('{items: []}', (b) => Array.isArray(b?.items)),
        ),
        (a) => (a.status === 431 ? undefined : 'not 431'),
      ),
    },
  ];
}

// ---------------------------------------------------------------------------------------------------
// The campaign

const FAMILIES = [
  'token',
  'introspection',
  'revocation',
  'authorization',
  'pushed authorization',
  'device_authorization',
  'device pages',
  'userinfo',
  'end-session',
  'interaction',
  'revocation stream',
  'admin',
  'http (raw socket)',
  'discovery and others',
  'mutation pass',
] as const;
type Family = (typeof FAMILIES)[number];
const PAGE_FAMILIES = new Set<Family>(['authorization', 'device pages', 'end-session', 'interaction']);
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe(`bad-input campaign (${testDialect})`, () => {
  let server: TestServer;
  let fx: Fixtures;
  const families = new Map<Family, Case[]>();
  let startTime: string | undefined;
  let logAtStart = 0;

  const introspect = async (client: RegisteredClient, token: string) => {
    const headers = { authorization: basic(client), 'content-type': FORM };
    const response = await fetch(`${server.url}/token/introspection`, { method: 'POST', headers, body: qs({ token }) });
    return (await response.json()) as { active: boolean; client_id?: string; token_type?: string };
  };
  const clientCredentials = async (client: RegisteredClient, post = false) => {
    const credentials: Record<string, string> = post ? { client_id: client.client_id, client_secret: client.client_secret! } : {};
    const body = qs({ grant_type: 'client_credentials', scope: 'api:read', ...credentials });
    const headers = { 'content-type': FORM, ...(post ? {} : { authorization: basic(client) }) };
    const response = await fetch(`${server.url}/token`, { method: 'POST', headers, body });
    const json = (await response.json()) as { access_token?: string };
    assert.equal(response.status, 200, JSON.stringify(json));
    return json.access_token!;
  };
  const processStart = async () => /^tally_process_start_time_seconds (\S+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1];
  /** Every token issued before the campaign, with the client it belongs to. */
  const preCampaignTokens = () => [
    ...MODES.map((mode) => ({ what: `${mode} client-credentials access token`, client: fx.workers[mode].client, token: fx.workers[mode].token })),
    ...MODES.map((mode) => ({ what: `${mode} code-flow access token`, client: fx.flows[mode].client, token: fx.flows[mode].access })),
    ...MODES.map((mode) => ({ what: `${mode} code-flow refresh token`, client: fx.flows[mode].client, token: fx.flows[mode].refresh })),
  ];

  before(async () => {
    server = await startServer({ env: { ADMIN_API_KEY: ADMIN_KEY, TRUST_PROXY: 'loopback' } });
    port = Number(server.env.PORT);
    const loggedOut = 'http://127.0.0.1:9/logged-out';
    const everyGrant = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'];
    const ccOnly = { grant_types: ['client_credentials'], response_types: [], scope: 'api:read' };
    const [web, poster, device, patchClient] = await Promise.all([
      registerClient(server, 'reference', { client_name: 'campaign web', grant_types: everyGrant, post_logout_redirect_uris: [loggedOut] }),
      registerClient(server, 'reference', { ...ccOnly, client_name: 'campaign poster', token_endpoint_auth_method: 'client_secret_post' }),
      registerClient(server, 'reference', {
        client_name: 'campaign device',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
        response_types: [],
        scope: 'openid profile',
      }),
      registerClient(server, 'reference', { ...ccOnly, client_name: 'campaign patch target' }),
    ]);
    const fixedClientId = `campaign-fixed-${process.pid}`;
    await registerClient(server, 'reference', { ...ccOnly, client_id: fixedClientId });
    const [user, target, patchUser] = await Promise.all([registerUser(server), registerUser(server), registerUser(server)]);
    const workers = {} as Fixtures['workers'];
    const flows = {} as Fixtures['flows'];
    await Promise.all(
      MODES.map(async (mode) => {
        const client = await registerClient(server, mode, { ...ccOnly, client_name: `campaign ${mode} worker` });
        workers[mode] = { client, token: await clientCredentials(client) };
        const flowClient = await registerClient(server, mode, { client_name: `campaign ${mode} app` });
        const tokens = await codeFlow(await discover(server, flowClient), user);
        assert.ok(tokens.refresh_token && tokens.id_token, `a refresh token and an ID token in ${mode} mode`);
        flows[mode] = { client: flowClient, access: tokens.access_token, refresh: tokens.refresh_token!, idToken: tokens.id_token! };
      }),
    );
    fx = {
      issuer: server.url,
      web,
      poster,
      device,
      workers,
      flows,
      sacrificial: await clientCredentials(poster, true),
      user,
      target,
      patchClient,
      patchUser,
      fixedClientId,
    };
    for (const { what, client, token } of preCampaignTokens()) {
      assert.equal((await introspect(client, token)).active, true, `${what} active before the campaign`);
    }

    const rng = prng(SEED);
    families.set('token', tokenCases(fx));
    families.set('introspection', introspectionCases(fx));
    families.set('revocation', revocationCases(fx));
    families.set('authorization', authorizationCases(fx));
    families.set('pushed authorization', parCases(fx));
    families.set('device_authorization', deviceAuthorizationCases(fx));
    families.set('device pages', devicePageCases(fx));
    families.set('userinfo', userinfoCases(fx));
    families.set('end-session', endSessionCases(fx));
    families.set('interaction', interactionCases(fx));
    families.set('revocation stream', streamCases(fx));
    families.set('admin', adminCases(fx));
    families.set('http (raw socket)', rawCases());
    families.set('discovery and others', otherCases(fx));
    families.set('mutation pass', mutationCases(rng, mutationBases(fx)));

    startTime = await processStart();
    assert.ok(startTime, 'tally_process_start_time_seconds in /metrics');
    logAtStart = server.output().length;
  });
  after(() => server?.stop());

  test('the table: at least 300 distinct kinds of malformed input, every case named once', (t) => {
    const all = [...families.values()].flat();
    const names = all.map((c) => c.name);
    const seen = new Set<string>();
    const duplicates = names.filter((n) => (seen.has(n) ? true : (seen.add(n), false)));
    assert.deepEqual(duplicates, [], 'case names are unique');
    const handWritten = all.filter((c) => !c.name.startsWith('mutation:')).length;
    assert.ok(handWritten >= 300, `${handWritten} hand-written kinds, expected at least 300`);
    assert.ok(seen.size >= 300, `${seen.size} distinct cases`);
    t.diagnostic(`${seen.size} distinct cases: ${handWritten} hand-written kinds and ${seen.size - handWritten} mutations (seed ${SEED})`);
    for (const family of FAMILIES) assert.ok((families.get(family)?.length ?? 0) > 0, `family ${family} has cases`);
  });

  for (const family of FAMILIES) {
    test(`${family}: every case answered within ${CASE_TIMEOUT_MS / 1000} s, never a 5xx, in the protocol's shape`, async (t) => {
      const cases = families.get(family)!;
      const logFrom = server.output().length;
      const started = Date.now();
      // Sessions and pages first (a login page, a device form), so that no failed sign-in precedes a good one.
      const prepared = await pool(cases, CONCURRENCY, async (c) => {
        try {
          return { request: typeof c.request === 'function' ? await c.request() : c.request };
        } catch (error) {
          return { failure: `setting up the case failed: ${(error as Error).message}` };
        }
      });
      const failures: string[] = [];
      await pool(cases, CONCURRENCY, async (c, i) => {
        const { request, failure } = prepared[i]! as { request?: Request; failure?: string };
        // People's pages are asked for as a browser asks for them.
        if (request && !isRaw(request) && PAGE_FAMILIES.has(family) && !request.headers?.accept) {
          request.headers = { ...request.headers, accept: BROWSER_ACCEPT };
        }
        if (!request) {
          failures[i] = `✗ ${c.name}\n    ${failure}`;
          return;
        }
        const answer = isRaw(request) ? await sendRaw(request) : await sendHttp(request);
        const why = basics(answer) ?? (answer.kind === 'raw' ? (c.expect as RawCheck)(answer) : (c.expect as Check)(answer));
        if (why) failures[i] = `✗ ${c.name}\n    request: ${describeRequest(request)}\n    answer:  ${describeAnswer(answer)}\n    why:     ${why}`;
      });
      const failed = failures.filter(Boolean);
      const logs = errorLines(server.output().slice(logFrom));
      t.diagnostic(`${cases.length} cases in ${Date.now() - started} ms, ${failed.length} failed${family === 'mutation pass' ? ` (seed ${SEED})` : ''}`);
      const log = logs.length ? `\n\nserver error lines meanwhile:\n${logs.map((l) => `  ${l.slice(0, 600)}`).join('\n')}` : '';
      assert.equal(failed.length, 0, `${family}: ${failed.length} of ${cases.length} cases failed (${testDialect}):\n\n${failed.join('\n\n')}${log}`);
    });
  }

  test('afterwards: the same process, healthy, and every token issued before the campaign still active', async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, '/healthz');
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200, '/readyz');
    assert.equal(await processStart(), startTime, 'process_start_time_seconds unchanged: the server did not restart');
    assert.equal(server.output().match(/Tally is serving the issuer/g)?.length, 1, 'started once');
    const inactive: string[] = [];
    for (const { what, client, token } of preCampaignTokens()) {
      const answer = await introspect(client, token);
      if (answer.active !== true || answer.client_id !== client.client_id) inactive.push(`${what}: ${JSON.stringify(answer)}`);
    }
    assert.deepEqual(inactive, [], 'tokens issued before the campaign are still active');
    const errors = errorLines(server.output().slice(logAtStart));
    assert.deepEqual(
      errors.map((l) => l.slice(0, 600)),
      [],
      'no error-level line in the server log during the campaign',
    );
  });
});
