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

/** Fetches `/.well-known/openid-configuration` once (retrying on the next call after a failure). */
export function createDiscovery(issuer: string, fetchTimeoutMs = 5000) {
  const base = issuer.replace(/\/$/, '');
  let pending: Promise<Discovery> | undefined;
  return () => {
    pending ??= (async () => {
      let response: Response;
      try {
        response = await fetch(`${base}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(fetchTimeoutMs) });
      } catch (error) {
        throw new IssuerUnavailableError(`discovery failed: ${(error as Error).message}`);
      }
      if (!response.ok) throw new IssuerUnavailableError(`discovery answered ${response.status}`);
      const document = (await response.json()) as Discovery;
      if (document.issuer !== base) throw new Error(`discovery names issuer ${document.issuer}, expected ${base}`);
      return document;
    })().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
