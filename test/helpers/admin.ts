import type { TestServer } from './server.ts';

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
