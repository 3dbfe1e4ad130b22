import assert from 'node:assert/strict';
import { REDIRECT_URI, type RegisteredClient } from './fixtures.ts';
import { freePort, startServer, type TestServer } from './server.ts';

export const ADMIN_KEY = 'test-admin-key-0123456789-abcdefghijklmnop';

export interface AdminAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls the admin API with the bootstrap key (or `token`). */
export async function admin<T = any>(server: TestServer, method: string, path: string, body?: unknown, token = ADMIN_KEY): Promise<AdminAnswer<T>> {
  const response = await fetch(`${server.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

let registered = 0;

/** A client registered through the admin API for every flow, in token `mode`; `extra` overrides any field. */
export async function registerClient(server: TestServer, mode: string, extra: Record<string, unknown> = {}): Promise<RegisteredClient> {
  const answer = await admin(server, 'POST', '/clients', {
    client_name: `${mode} app`,
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    scope: 'openid profile email offline_access api:read',
    token_mode: mode,
    ...extra,
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

/** A resource server: a service client that introspects the tokens of the default audience (the issuer). */
export function registerResourceServer(server: TestServer): Promise<RegisteredClient> {
  return registerClient(server, 'reference', {
    client_name: 'resource server',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    introspection_audiences: [server.url],
  });
}

/** A user created through the admin API, with the password to sign in with. */
export async function registerUser(server: TestServer): Promise<{ id: string; username: string; password: string }> {
  const username = `user${process.pid}x${++registered}`;
  const password = `password-${registered}-${Math.random()}`;
  const answer = await admin(server, 'POST', '/users', { username, password, email: `${username}@example.com` });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return { id: answer.body.id as string, username, password };
}

/** Two replicas of one issuer (A's URL) on one database, with the admin key; `env` for both. */
export async function startReplicas(env: NodeJS.ProcessEnv = {}): Promise<[TestServer, TestServer]> {
  const [portA, portB] = [await freePort(), await freePort()];
  const shared = { ADMIN_API_KEY: ADMIN_KEY, ISSUER: `http://localhost:${portA}`, ...env };
  const a = await startServer({ env: { ...shared, PORT: String(portA) } });
  const b = await startServer({ env: { ...shared, PORT: String(portB), DATABASE_URL: a.databaseUrl } });
  return [a, b];
}
