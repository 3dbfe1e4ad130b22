import type Provider from 'oidc-provider';
import type { SecurityEvents } from '../config/security-events.js';

type RevokingContext = { ip?: string; oidc?: { route?: string; params?: { grant_type?: unknown }; client?: { clientId?: string } } };

/**
 * At the token endpoint oidc-provider revokes a grant for one reason only: a single-use credential
 * presented again (a rotated refresh token beyond the reuse leeway, an authorization or device code
 * already redeemed), which it answers with invalid_grant after revoking everything of that grant.
 * Each such revocation is a security event: `refresh_token_reused` or `code_replayed`.
 */
export function reportReplays(provider: Provider, security: SecurityEvents): void {
  provider.on('grant.revoked', (ctx: RevokingContext, grantId: string) => {
    if (ctx?.oidc?.route !== 'token') return;
    const grantType = String(ctx.oidc.params?.grant_type ?? '');
    const fields = { client_id: ctx.oidc.client?.clientId, grant_id: grantId, ip: ctx.ip, grant_type: grantType };
    security.report(grantType === 'refresh_token' ? 'refresh_token_reused' : 'code_replayed', fields);
  });
}
