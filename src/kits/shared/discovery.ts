/** The few discovery fields the kits use. */
export interface Discovery {
  issuer: string;
  token_endpoint: string;
  introspection_endpoint?: string;
  jwks_uri: string;
}

export class IssuerUnavailableError extends Error {
  override name = 'IssuerUnavailableError';
}

/**
 * The discovery document names an endpoint outside the issuer's origin that the caller did not allow
 * (`allowedEndpointOrigins`): the kit uses none of it, since a poisoned document could collect client
 * secrets (token_endpoint, introspection_endpoint) or let forged JWTs through (jwks_uri).
 */
export class UntrustedEndpointError extends Error {
  override name = 'UntrustedEndpointError';
}

/** The endpoints the kits call, each checked against the allowed origins. */
const ENDPOINTS = ['jwks_uri', 'token_endpoint', 'introspection_endpoint'] as const;

function originOf(url: unknown): string | undefined {
  return typeof url === 'string' && URL.canParse(url) ? new URL(url).origin : undefined;
}

export interface DiscoveryOptions {
  /** Origins besides the issuer's that discovered endpoints may be on (e.g. "https://keys.example.com"). */
  allowedEndpointOrigins?: string[] | undefined;
  fetchTimeoutMs?: number;
}

/** Fetches `/.well-known/openid-configuration` once (retrying on the next call after a failure). */
export function createDiscovery(issuer: string, options: DiscoveryOptions = {}) {
  const base = issuer.replace(/\/$/, '');
  const allowed = new Set([new URL(base).origin, ...(options.allowedEndpointOrigins ?? []).map((origin) => originOf(origin) ?? origin)]);
  let pending: Promise<Discovery> | undefined;
  return () => {
    pending ??= (async () => {
      let response: Response;
      try {
        response = await fetch(`${base}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(options.fetchTimeoutMs ?? 5000) });
      } catch (error) {
        throw new IssuerUnavailableError(`discovery failed: ${(error as Error).message}`);
      }
      if (!response.ok) throw new IssuerUnavailableError(`discovery answered ${response.status}`);
      const document = (await response.json()) as Discovery;
      if (document.issuer !== base) throw new Error(`discovery names issuer ${document.issuer}, expected ${base}`);
      for (const name of ENDPOINTS) {
        const value = document[name];
        if (value === undefined && name === 'introspection_endpoint') continue;
        const origin = originOf(value);
        if (!origin || !allowed.has(origin))
          throw new UntrustedEndpointError(
            `discovery names ${name} ${JSON.stringify(value)}, not on the issuer's origin ${new URL(base).origin}: list its origin in allowedEndpointOrigins to use it`,
          );
      }
      return document;
    })().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
