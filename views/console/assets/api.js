// The admin API, with the console's bearer token; errors are RFC 9457 problems.
import { accessToken, forgetSession, issuer, signIn } from './auth.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `the admin API answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Raised for a 403: the signed-in user has no administrator rights (app.js shows the refusal page). */
export class NotAdmin extends ApiError {}

const query = (params) => {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return entries.length ? `?${new URLSearchParams(entries)}` : '';
};

export async function api(method, path, { body, params } = {}) {
  const token = await accessToken();
  const response = await fetch(`${issuer}/admin${path}${query(params ?? {})}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    // Revoked or expired under us: sign in again, back to this page.
    forgetSession();
    await signIn();
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : undefined;
  if (response.status === 403) throw new NotAdmin(403, data);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A route the server does not have yet (an older server): pages say "not available" rather than fail. */
export const isMissingRoute = (error) => error instanceof ApiError && error.status === 404;

/** A GET of an event stream (the admin revocation stream): resolves with the response, or throws ApiError. */
export async function openStream(path, { signal, lastEventId } = {}) {
  const token = await accessToken();
  const response = await fetch(`${issuer}/admin${path}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
    signal,
  });
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new ApiError(response.status, text.startsWith('{') ? JSON.parse(text) : undefined);
  }
  return response;
}

/** Reads server-sent events from a fetch response; calls onEvent({ id, event, data }) for each. */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const fieldValue = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'data') message.data += (message.data ? '\n' : '') + fieldValue;
        else if (name === 'id') message.id = fieldValue;
        else if (name === 'event') message.event = fieldValue;
      }
      if (message.data) onEvent(message);
      end = buffer.indexOf('\n\n');
    }
  }
}
