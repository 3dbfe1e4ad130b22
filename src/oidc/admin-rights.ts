// Who may hold administrator rights over this server, decided here once. Scope `admin` is reserved:
// - it is the only scope of one resource, `$ISSUER/admin` (the admin API), and no other resource's;
// - only a client whose metadata `scope` lists `admin` may ask for that resource (the operator sets it);
// - a user's token carries it only when the user has the role `admin` (consent and every admin request);
// - the admin API accepts it only in an access token whose audience is that resource.

export const ADMIN_SCOPE = 'admin';
export const ADMIN_ROLE = 'admin';

/** The resource indicator (and token audience) of the admin API. */
export function adminResource(issuer: string): string {
  return `${issuer}/admin`;
}

/** Whether a client's registered scope lists `admin`. */
export function clientMayRequestAdmin(client: { scope?: string | undefined }): boolean {
  return (client.scope ?? '').split(' ').includes(ADMIN_SCOPE);
}

/** Whether a user's tokens may carry scope `admin`: an enabled account with the role `admin`. */
export function userMayHoldAdmin(user: { roles: readonly string[]; disabled: boolean } | undefined): boolean {
  return !!user && !user.disabled && user.roles.includes(ADMIN_ROLE);
}

/**
 * The scopes a resource server serves a client: for the admin API, `admin` alone; for any other
 * resource, the client's scopes without `admin`. Undefined: the client may not ask for this resource.
 */
export function resourceScopes(issuer: string, resource: string, clientScopes: string): string | undefined {
  const scopes = clientScopes.split(' ').filter(Boolean);
  if (resource === adminResource(issuer)) return scopes.includes(ADMIN_SCOPE) ? ADMIN_SCOPE : undefined;
  return scopes.filter((scope) => scope !== ADMIN_SCOPE).join(' ');
}

/** Whether a token's audience (`aud`, one value or several) names the admin API. */
export function isAdminAudience(issuer: string, aud: string | readonly string[] | undefined): boolean {
  const audiences = typeof aud === 'string' ? [aud] : (aud ?? []);
  return audiences.includes(adminResource(issuer));
}

/** Scopes a user consents to, split: `admin` is withheld (refused, not asked again) from a user without the role. */
export function splitAdminScope(scopes: readonly string[], mayHoldAdmin: boolean): { granted: string[]; withheld: string[] } {
  const withhold = (scope: string) => scope === ADMIN_SCOPE && !mayHoldAdmin;
  return { granted: scopes.filter((s) => !withhold(s)), withheld: scopes.filter(withhold) };
}

/** What the consent page says of scope `admin`, for a user who may hold it. */
export const ADMIN_SCOPE_DESCRIPTION = 'Administrator rights over this server: manage its clients, users and tokens';
