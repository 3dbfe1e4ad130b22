import type { ValidationResult, Validator } from './index.js';

export interface RequireTokenOptions {
  /** Every one of these scopes must be granted. */
  scopes?: string[];
  /** The realm named in WWW-Authenticate (default "tally"). */
  realm?: string;
}

type Req = { headers: Record<string, string | string[] | undefined>; token?: ValidationResult };
type Res = { status(code: number): Res; set(field: string, value: string): Res; json(body: unknown): unknown };
type Next = (error?: unknown) => void;

const quote = (value: string) => value.replace(/["\\]/g, '');

/**
 * Express middleware (RFC 6750): 401 `invalid_token` without a good bearer token, 403
 * `insufficient_scope` when scopes are missing; otherwise `req.token` is the validation result.
 */
export function requireToken(validator: Validator, options: RequireTokenOptions = {}) {
  const realm = quote(options.realm ?? 'tally');
  const required = options.scopes ?? [];
  return async (req: Req, res: Res, next: Next) => {
    try {
      const header = req.headers.authorization;
      const match = typeof header === 'string' ? /^Bearer +([\x21-\x7E]+)$/i.exec(header.trim()) : null;
      const result = match ? await validator.validate(match[1]!) : { active: false };
      if (!result.active) {
        const description = match ? 'the access token is not valid' : 'a bearer access token is required';
        res
          .status(401)
          .set('WWW-Authenticate', `Bearer realm="${realm}", error="invalid_token", error_description="${description}"`)
          .json({ error: 'invalid_token', error_description: description });
        return;
      }
      const granted = new Set(typeof result.scope === 'string' ? result.scope.split(' ') : []);
      const missing = required.filter((scope) => !granted.has(scope));
      if (missing.length) {
        const scope = quote(required.join(' '));
        res
          .status(403)
          .set('WWW-Authenticate', `Bearer realm="${realm}", error="insufficient_scope", scope="${scope}"`)
          .json({ error: 'insufficient_scope', error_description: `requires scope ${scope}`, scope });
        return;
      }
      req.token = result;
      next();
    } catch (error) {
      next(error);
    }
  };
}
