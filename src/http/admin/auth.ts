import type { NextFunction, Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { constantTimeEqual } from '../../lib/crypto.js';
import { Problem } from './problem.js';
import { isDatabaseUnavailable } from '../../storage/unavailable.js';
import { ledgerOf } from '../../oidc/provider-ledger.js';

export interface AdminActor {
  kind: 'api_key' | 'token';
  /** The client (and subject) behind a token; 'api-key' for the bootstrap key. */
  id: string;
}

type FoundToken = { scopes: Set<string>; clientId: string; accountId?: string; grantId?: string; exp?: number } | undefined;

/**
 * Bearer authentication: the bootstrap ADMIN_API_KEY, compared in constant time, or an access token
 * this server issued with scope `admin`, looked up through the ledger each time so that revoking it
 * locks its holder out at once.
 */
export function requireAdmin(provider: () => Provider, adminApiKey: string | undefined) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const models = [provider().AccessToken, provider().ClientCredentials] as unknown as { find(value: string): Promise<FoundToken> }[];
    const header = req.headers.authorization ?? '';
    const match = /^Bearer ([\x21-\x7E]+)$/i.exec(header);
    res.set('www-authenticate', 'Bearer realm="tally-admin"');
    if (!match) throw new Problem(401, 'unauthenticated', 'Unauthenticated', 'send Authorization: Bearer <admin key or access token with scope admin>');
    const credential = match[1]!;
    if (adminApiKey && constantTimeEqual(credential, adminApiKey)) {
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
    if (!token || !active) throw new Problem(401, 'invalid_token', 'Unauthenticated', 'the bearer credential is not valid');
    // Known before the scope check, so that a refused attempt is audited with who made it.
    res.locals.actor = { kind: 'token', id: token.accountId ? `${token.clientId}/${token.accountId}` : token.clientId } satisfies AdminActor;
    if (!token.scopes.has('admin')) {
      res.set('www-authenticate', 'Bearer realm="tally-admin", error="insufficient_scope", scope="admin"');
      throw new Problem(403, 'insufficient_scope', 'Forbidden', 'the access token lacks scope admin');
    }
    next();
  };
}
