import assert from 'node:assert/strict';
import { admin } from './admin.ts';
import type { TestServer } from './server.ts';

/**
 * A resource server's own client (client credentials only), allowed to introspect tokens for the
 * issuer's default audience (`introspection_audiences`, where the server knows that field; a server
 * without it lets every confidential client introspect any token).
 */
export async function registerResourceServer(server: TestServer, audiences: string[] = [server.url]): Promise<{ client_id: string; client_secret: string }> {
  const body = { client_name: 'resource server', grant_types: ['client_credentials'], response_types: [] };
  let answer = await admin(server, 'POST', '/clients', { ...body, introspection_audiences: audiences });
  if (answer.status === 400 && JSON.stringify(answer.body).includes('introspection_audiences')) answer = await admin(server, 'POST', '/clients', body);
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}
