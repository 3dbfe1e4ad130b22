import { basicAuthorization } from '../../protocol/client-credentials.js';
import { IssuerUnavailableError } from './discovery.js';

/**
 * A form POST to one of the issuer's endpoints, authenticated as a confidential client with HTTP Basic
 * (the token request of the client kit, the introspection of the validator kit). A network failure or
 * timeout is the issuer being unavailable; what the issuer answered is the caller's to judge. `headers`
 * adds to the request's (a DPoP proof).
 */
export async function postAsClient(
  endpoint: string,
  client: { clientId: string; clientSecret: string },
  form: URLSearchParams,
  { what, timeoutMs, headers }: { what: string; timeoutMs: number; headers?: Record<string, string> | undefined },
): Promise<Response> {
  try {
    return await fetch(endpoint, {
      method: 'POST',
      headers: {
        authorization: basicAuthorization(client.clientId, client.clientSecret),
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...headers,
      },
      body: form,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new IssuerUnavailableError(`${what} failed: ${(error as Error).message}`);
  }
}
