import type { TestServer } from './server.ts';

let counter = 0;
export const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}-${Date.now().toString(36)}`;

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  [key: string]: unknown;
}

export function createClient(server: TestServer, metadata: Record<string, unknown>): RegisteredClient {
  return JSON.parse(server.cli(['clients', 'create', '--json', JSON.stringify(metadata)])) as RegisteredClient;
}

export function createUser(server: TestServer, username = unique('user'), password = `pw-${unique('secret')}`) {
  const user = JSON.parse(
    server.cli(['users', 'create', '--username', username, '--email', `${username}@example.com`, '--name', 'Test User', '--password-stdin'], `${password}\n`),
  ) as { id: string; username: string };
  return { ...user, password };
}

export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** A confidential web client allowed every flow the server offers. */
export function createWebClient(server: TestServer, extra: Record<string, unknown> = {}) {
  return createClient(server, {
    client_name: 'Test web app',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: ['http://127.0.0.1:9/logged-out'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    scope: 'openid profile email offline_access api:read',
    ...extra,
  });
}
