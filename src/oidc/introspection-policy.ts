import type Provider from 'oidc-provider';

// Who sees what at introspection (CONTRACT.md, "Introspection answers according to who asks"): one
// rule, asked by oidc-provider's introspection (features.introspection.allowedPolicy) and by Tally's
// direct answer (direct-introspection.ts), which must answer alike (test/direct-answers.test.ts).

/** The client asking, as oidc-provider's Client instance has it (extra metadata keeps its snake_case name). */
export interface IntrospectingClient {
  clientId: string;
  clientAuthMethod?: string;
  introspection_audiences?: unknown;
}

/** The token asked about, as oidc-provider's models have it. */
export interface IntrospectedToken {
  kind: string;
  clientId?: string;
  aud?: unknown;
  tokenType?: string;
}

/**
 * The client a token was issued to sees it; another client sees an access token whose `aud` names one
 * of its `introspection_audiences`, and never a refresh token. A public client proves no identity, so
 * it sees only its own tokens (as oidc-provider's default policy has it).
 */
export function mayIntrospect(caller: IntrospectingClient, token: IntrospectedToken): boolean {
  if (token.clientId !== undefined && token.clientId === caller.clientId) return true;
  if (token.kind === 'RefreshToken' || caller.clientAuthMethod === 'none') return false;
  const audiences = caller.introspection_audiences;
  if (!Array.isArray(audiences) || audiences.length === 0) return false;
  return [token.aud].flat().some((aud) => typeof aud === 'string' && audiences.includes(aud));
}

/** `token_type` of an active answer: Bearer or DPoP for an access token, refresh_token for a refresh token. */
export function introspectionTokenType(token: IntrospectedToken): string | undefined {
  return token.kind === 'RefreshToken' ? 'refresh_token' : token.tokenType;
}

/** oidc-provider's `features.introspection.allowedPolicy`; the direct answer reproduces only this one. */
export function introspectionAllowedPolicy(_ctx: unknown, client: IntrospectingClient, token: IntrospectedToken): boolean {
  return mayIntrospect(client, token);
}

/**
 * oidc-provider writes no `token_type` for a refresh token; a resource server must be able to tell it
 * from an access token (a refresh token was accepted as a Bearer token). The key is already in its
 * place in the answer (written as undefined), so the member order stays oidc-provider's.
 */
export function installIntrospectionTokenType(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    const refreshToken = ctx.oidc?.route === 'introspection' ? (ctx.oidc.entities.RefreshToken as IntrospectedToken | undefined) : undefined;
    if (refreshToken && body && typeof body === 'object' && body.active === true) body.token_type = introspectionTokenType(refreshToken);
  });
}
