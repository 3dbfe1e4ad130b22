import type { NextFunction, Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { constantTimeEqual } from '../../lib/crypto.js';
import { Problem } from './problem.js';
import { isDatabaseUnavailable } from '../../storage/unavailable.js';
import { ledgerOf } from '../../oidc/provider-ledger.js';
import { ADMIN_SCOPE, adminResource, isAdminAudience, userMayHoldAdmin } from '../../oidc/admin-rights.js';
import type { SecurityEvents } from '../../config/security-events.js';
import type { UserStore } from '../../storage/users.js';

export interface AdminActor {
  kind: 'api_key' | 'token';
  /** The client (and subject) behind a token; 'api-key' for the bootstrap key. */
  id: string;
}

type FoundToken = { scopes: Set<string>; clientId: string; accountId?: string; grantId?: string; exp?: number; aud?: string | string[] } | undefined;

export interface AdminAuthDependencies {
  config: { adminApiKey?: string | undefined; issuer: string };
  users: Pick<UserStore, 'find'>;
  security: SecurityEvents;
}

/** Why a call was refused, as the `admin_auth_failed` event names it. */
type Refusal = 'no_credentials' | 'invalid_credentials' | 'no_admin_scope' | 'wrong_audience' | 'not_admin_user';

/**
 * Bearer authentication: the bootstrap ADMIN_API_KEY, compared in constant time, or an access token
 * this server issued with admin rights (oidc/admin-rights.ts): active as the ledger manager judges it,
 * looked up each time so that revoking it locks its holder out at once; with scope `admin`; for the
 * audience `$ISSUER/admin`; and, for a user's token, a user who has the role `admin` now. Not a valid
 * credential: 401; a valid token without admin rights: 403. Each refusal is an `admin_auth_failed` event.
 */
export function requireAdmin(provider: () => Provider, { config, users, security }: AdminAuthDependencies) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const refuse = (reason: Refusal, problem: Problem) => {
      security.report('admin_auth_failed', { reason, ip: req.ip, method: req.method, path: req.path });
      return problem;
    };
    const forbidden = (reason: Refusal, detail: string) => {
      res.set('www-authenticate', 'Bearer realm="tally-admin", error="insufficient_scope", scope="admin"');
      return refuse(reason, new Problem(403, 'insufficient_scope', 'Forbidden', detail));
    };
    const models = [provider().AccessToken, provider().ClientCredentials] as unknown as { find(value: string): Promise<FoundToken> }[];
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([\x21-\x7E]+)$/i.exec(header);
    res.set('www-authenticate', 'Bearer realm="tally-admin"');
    if (!match)
      throw refuse(
        'no_credentials',
        new Problem(401, 'unauthenticated', 'Unauthenticated', 'send Authorization: Bearer <admin key or access token with scope admin>'),
      );
    const credential = match[1]!;
    if (config.adminApiKey && constantTimeEqual(credential, config.adminApiKey)) {
      res.locals.actor = { kind: 'api_key', id: 'api-key' } satisfies AdminActor;
      return next();
    }
    let token: FoundToken;
    for (const model of models) {
      // A database outage is not a wrong credential: it fails the request (a 503), not the caller.
      token = await model.find(credential).catch((error: unknown) => {
        if (isDatabaseUnavailable(error)) throw error;
        return undefined;
      });
      if (token) break;
    }
    // Active as the ledger manager judges it: unexpired, not revoked, its grant in place for its client and account.
    const active = token && (await ledgerOf(provider()).findActive({ found: token }));
    if (!token || !active) throw refuse('invalid_credentials', new Problem(401, 'invalid_token', 'Unauthenticated', 'the bearer credential is not valid'));
    // Known before the rights checks, so that a refused attempt is audited with who made it.
    res.locals.actor = { kind: 'token', id: token.accountId ? `${token.clientId}/${token.accountId}` : token.clientId } satisfies AdminActor;
    if (!token.scopes.has(ADMIN_SCOPE)) throw forbidden('no_admin_scope', 'the access token lacks scope admin');
    if (!isAdminAudience(config.issuer, token.aud))
      throw forbidden('wrong_audience', `the access token is not for the admin API: request it with resource=${adminResource(config.issuer)}`);
    if (token.accountId && !userMayHoldAdmin(await users.find(token.accountId))) throw forbidden('not_admin_user', 'the user does not have the role admin');
    next();
  };
}
