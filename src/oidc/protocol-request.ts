import type { IncomingHttpHeaders } from 'node:http';
import { parse as parseForm, stringify as stringifyForm, type ParsedUrlQuery } from 'node:querystring';
import { looksLikeJwt, markJwt } from './jwt-mark.js';

/**
 * A protocol request whose body Tally has read (http/server.ts, under PROVIDER_BODY_LIMIT): its form
 * parsed once, here, for the direct answers and the JWT mark alike. oidc-provider is handed `body`.
 */
export interface ProtocolRequest {
  headers: IncomingHttpHeaders;
  /** The body oidc-provider gets: as sent, or with the form's JWT marked (jwt-mark.ts). */
  body: Buffer;
  /** The form, read as oidc-provider reads one (node:querystring; a repeated name gives an array); undefined when not read. */
  form: ParsedUrlQuery | undefined;
  /** A form post whose only content-type parameter, if any, is `charset=utf-8`: decoded alike by Tally and oidc-provider. */
  utf8Form: boolean;
}

const FORM = 'application/x-www-form-urlencoded';
/** Where oidc-provider refuses JWTs that Tally must let through (jwt-mark.ts). */
const MARKED_PATHS = new Set(['/token/introspection', '/token/revocation']);
/** The token endpoint and those two: every path whose form Tally reads (the others go to oidc-provider unread). */
const FORM_PATHS = new Set(['/token', ...MARKED_PATHS]);

/** The path of a request URL as Koa routes it: up to its query or fragment. */
export function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** Whether Tally reads this request's form before oidc-provider: a POST to the token, introspection or revocation endpoint. */
export function readsForm(method: string | undefined, path: string): boolean {
  return method === 'POST' && FORM_PATHS.has(path);
}

/**
 * The request, its form parsed (when a direct answer may read it, or a JWT may need its mark) and, at
 * introspection and revocation, a `token` that looks like a JWT marked in the body handed on.
 */
export function parseProtocolRequest(path: string, headers: IncomingHttpHeaders, body: Buffer): ProtocolRequest {
  const [type, ...parameters] = (headers['content-type'] ?? '').split(';').map((part) => part.trim().toLowerCase());
  const utf8Form = type === FORM && parameters.every((parameter) => parameter === 'charset=utf-8');
  const marking = type === FORM && MARKED_PATHS.has(path);
  if (!utf8Form && !marking) return { headers, body, form: undefined, utf8Form };
  // With node:querystring's defaults, as oidc-provider parses (its first 1,000 segments): what it will read.
  const form = parseForm(body.toString('utf8'));
  const token = form.token;
  if (marking && typeof token === 'string' && token && looksLikeJwt(token)) {
    // Written out again from that reading, so that oidc-provider reads the same form, the token marked.
    form.token = markJwt(token);
    return { headers, body: Buffer.from(stringifyForm(form)), form, utf8Form };
  }
  return { headers, body, form, utf8Form };
}
