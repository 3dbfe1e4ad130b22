import type { X509Certificate } from 'node:crypto';
import { certificateFromHeader, DPOP_ALGORITHMS, type BindingRefusal, type Presentation } from './binding.js';
import type { ValidationResult, Validator } from './index.js';

export interface RequireTokenOptions {
  /** Every one of these scopes must be granted. */
  scopes?: string[];
  /** The realm named in WWW-Authenticate (default "tally"). */
  realm?: string;
  /**
   * The origin clients call this API at (e.g. `https://api.example.com`), which DPoP proofs name in
   * `htu`. Behind a proxy the request does not know it; by default it is the request's protocol and Host.
   */
  publicOrigin?: string;
  /** Refuse the Bearer scheme: only DPoP-bound tokens, with their proof (default false). */
  requireDpop?: boolean;
  /**
   * Read the client certificate of certificate-bound tokens from the RFC 9440 `Client-Cert` header,
   * which only a TLS-terminating proxy in front of this API may set (default false: the TLS peer
   * certificate of this process's own HTTPS listener).
   */
  trustClientCertHeader?: boolean;
}

type PeerSocket = { encrypted?: boolean; getPeerCertificate?: () => { raw?: Buffer } | null };
type Req = {
  headers: Record<string, string | string[] | undefined>;
  method?: string;
  url?: string;
  originalUrl?: string;
  protocol?: string;
  /** A net.Socket, or a tls.TLSSocket on an HTTPS listener. */
  socket?: unknown;
  token?: ValidationResult;
};
type Res = { status(code: number): Res; set(field: string, value: string | string[]): Res; json(body: unknown): unknown };
type Next = (error?: unknown) => void;

const quote = (value: string) => value.replace(/["\\]/g, '');
const ALGS = DPOP_ALGORITHMS.join(' ');

/** The scheme and token of the Authorization header, when it is one of the two this API takes. */
function credentialsOf(header: unknown): { scheme: 'Bearer' | 'DPoP'; token: string } | undefined {
  const match = typeof header === 'string' ? /^(Bearer|DPoP) +([\x21-\x7E]+)$/i.exec(header.trim()) : null;
  if (!match) return undefined;
  return { scheme: match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: match[2]! };
}

/** The URL the client called, as a DPoP proof's `htu` names it. */
function requestUrl(req: Req, publicOrigin: string | undefined): string {
  const path = req.originalUrl ?? req.url ?? '/';
  if (publicOrigin) return `${publicOrigin.replace(/\/$/, '')}${path}`;
  const protocol = req.protocol ?? ((req.socket as PeerSocket | undefined)?.encrypted ? 'https' : 'http');
  return `${protocol}://${String(req.headers.host ?? 'localhost')}${path}`;
}

/** The TLS peer certificate, or the trusted `Client-Cert` header's. */
function certificateOf(req: Req, trustHeader: boolean): Uint8Array | X509Certificate | undefined {
  if (trustHeader) return certificateFromHeader(req.headers['client-cert']);
  const raw = (req.socket as PeerSocket | undefined)?.getPeerCertificate?.()?.raw;
  return raw && raw.length > 0 ? raw : undefined;
}

/**
 * Express middleware (RFC 6750, RFC 9449 §7): 401 with `Bearer` and `DPoP` challenges without a good
 * token presented as its binding requires (`invalid_token`, or `invalid_dpop_proof` for a bad proof),
 * 403 `insufficient_scope` when scopes are missing; otherwise `req.token` is the validation result.
 */
export function requireToken(validator: Validator, options: RequireTokenOptions = {}) {
  const realm = quote(options.realm ?? 'tally');
  const required = options.scopes ?? [];
  const bearerAccepted = options.requireDpop !== true;

  /** The challenges of both accepted schemes; `error` goes on the scheme the client used. */
  function challenges(used: 'Bearer' | 'DPoP', error: string, extra: string): string[] {
    const params = `error="${error}", ${extra}`;
    return [
      ...(bearerAccepted ? [`Bearer realm="${realm}"${used === 'Bearer' ? `, ${params}` : ''}`] : []),
      `DPoP realm="${realm}", algs="${ALGS}"${used === 'DPoP' || !bearerAccepted ? `, ${params}` : ''}`,
    ];
  }

  return async (req: Req, res: Res, next: Next) => {
    try {
      const credentials = credentialsOf(req.headers.authorization);
      let refusal: BindingRefusal | undefined;
      let result: ValidationResult = { active: false };
      if (!credentials) refusal = { error: 'invalid_token', description: `a ${bearerAccepted ? 'bearer or ' : ''}DPoP access token is required` };
      else if (credentials.scheme === 'Bearer' && !bearerAccepted) refusal = { error: 'invalid_token', description: 'a DPoP access token is required' };
      else {
        const presentation: Presentation = {};
        if (credentials.scheme === 'DPoP') {
          const proof = req.headers.dpop;
          presentation.dpop = { proof: typeof proof === 'string' ? proof : '', method: req.method ?? 'GET', url: requestUrl(req, options.publicOrigin) };
        }
        const certificate = certificateOf(req, options.trustClientCertHeader === true);
        if (certificate) presentation.certificate = certificate;
        const checked = await validator.check(credentials.token, presentation);
        result = checked.result;
        if (!result.active) refusal = checked.refusal ?? { error: 'invalid_token', description: 'the access token is not valid' };
      }
      const used = credentials?.scheme ?? 'Bearer';
      if (refusal) {
        res
          .status(401)
          .set('WWW-Authenticate', challenges(used, refusal.error, `error_description="${quote(refusal.description)}"`))
          .json({ error: refusal.error, error_description: refusal.description });
        return;
      }
      const granted = new Set(typeof result.scope === 'string' ? result.scope.split(' ') : []);
      const missing = required.filter((scope) => !granted.has(scope));
      if (missing.length) {
        const scope = quote(required.join(' '));
        res
          .status(403)
          .set('WWW-Authenticate', challenges(used, 'insufficient_scope', `scope="${scope}"`))
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
