import type { Runtime } from '../runtime.js';
import { TallyError } from '../lib/errors.js';
import { isUniqueViolation } from '../storage/database.js';
import { ADMIN_SCOPE } from '../oidc/admin-rights.js';
import { parseNewClient } from './client-schemas.js';
import { registerClient, updateClient } from './clients.js';

// The admin console's own client (http/console.ts serves the pages): a public client (no secret can
// be kept in a browser) doing the code flow with PKCE, allowed scope `admin`, so that the console's
// tokens reach the admin API only for users with the role `admin` (oidc/admin-rights.ts).

export const CONSOLE_CLIENT_ID = 'console';

/** What the server keeps the `console` client to: everything but what an operator may rename. */
export function consoleClientMetadata(issuer: string) {
  return {
    client_id: CONSOLE_CLIENT_ID,
    application_type: 'web' as const,
    redirect_uris: [`${issuer}/console/callback`],
    post_logout_redirect_uris: [`${issuer}/console/`],
    grant_types: ['authorization_code' as const],
    response_types: ['code' as const],
    token_endpoint_auth_method: 'none' as const,
    scope: `openid ${ADMIN_SCOPE}`,
    require_pkce: true,
    // Reference tokens: an administrator's credential the browser holds is revoked at once, and reveals nothing.
    token_mode: 'reference' as const,
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Creates the `console` client, or puts its metadata back as it should be; leaves it alone when it
 * already is (so a start writes nothing, and caches stay warm). Several replicas starting at once: one
 * creates it, the others find it taken (a unique violation) and compare; writing the same metadata
 * twice is harmless.
 */
export async function ensureConsoleClient(runtime: Runtime): Promise<'created' | 'updated' | 'unchanged'> {
  const wanted = consoleClientMetadata(runtime.config.issuer);
  const current = await runtime.clients.find(CONSOLE_CLIENT_ID);
  if (!current) {
    try {
      await registerClient(runtime, parseNewClient({ client_name: 'Tally admin console', ...wanted }));
      return 'created';
    } catch (error) {
      const taken = isUniqueViolation(error) || (error instanceof TallyError && error.code === 'duplicate_client_id');
      if (!taken) throw error;
      runtime.clients.invalidate(CONSOLE_CLIENT_ID);
    }
  }
  const metadata = (await runtime.clients.find(CONSOLE_CLIENT_ID))?.metadata ?? {};
  const { client_id: _id, ...fields } = wanted;
  if (Object.entries(fields).every(([key, value]) => same(metadata[key], value))) return 'unchanged';
  await updateClient(runtime, CONSOLE_CLIENT_ID, fields);
  return 'updated';
}
