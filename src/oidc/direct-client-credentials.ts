import type Provider from 'oidc-provider';
import type { VerifiedSecrets } from './client-secrets.js';
import { directForm, knownBasicClient } from './direct-client-auth.js';
// Internals: the configuration oidc-provider uses, its check of a resource server's description and its scope syntax check.
import { isValidScope, providerConfiguration, validResourceServer, type ProviderClient } from './internals/index.js';
import type { ProtocolRequest } from './protocol-request.js';
const PARAMETERS = new Set(['grant_type', 'scope']);

type ResourceServerInfo = { scope: string };
type ClientCredentialsToken = { resourceServer: object; scope?: string; expiration: number; tokenType: string; save(): Promise<string> };

/**
 * The client credentials grant for a client authenticating with a client secret it used before,
 * answered without oidc-provider's Koa stack, which costs more than issuing the token.
 *
 * The token is oidc-provider's own: its ClientCredentials model, given the resource server its
 * resource indicators configuration resolves, issues and saves it (the ledger entry, the JWT, the
 * events), and the scope rules and response are those of its grant handler, step for step. Anything
 * else goes to oidc-provider, which also produces every error: a `resource` or
 * `authorization_details` parameter, other client authentication methods, a secret not verified in
 * the last few minutes, sender-constrained clients, CORS, DPoP, attestation, a scope the client may
 * not have, repeated or unexpected parameters. The configuration functions it calls (default
 * resource, resource server info, token TTLs and claims) are Tally's, which read no request context.
 */
export function createDirectClientCredentials(provider: Provider, secrets: VerifiedSecrets) {
  const configuration = providerConfiguration(provider);
  const { features } = configuration;
  const reproducible =
    features.clientCredentials.enabled &&
    configuration.grantTypes.has('client_credentials') &&
    features.resourceIndicators.enabled &&
    !features.richAuthorizationRequests.enabled &&
    !features.attestClientAuth.enabled;
  const models = provider as unknown as {
    ClientCredentials: new (fields: { client: ProviderClient; scope?: string | undefined }) => ClientCredentialsToken;
    ResourceServer: new (identifier: string, info: ResourceServerInfo) => { scope: string };
  };

  /** oidc-provider's validateClientScope: a known scope outside the client's `scope` is refused. */
  function allowed(client: ProviderClient, requested: Set<string>): boolean {
    if (!client.scope) return true;
    const allowList = new Set(client.scope.split(' '));
    for (const scope of requested) if (configuration.scopes.has(scope) && !allowList.has(scope)) return false;
    return true;
  }

  return {
    /** The JSON body of a 200 (sent with DIRECT_ANSWER_HEADERS), or undefined when oidc-provider must answer. */
    async answer(request: ProtocolRequest): Promise<Record<string, unknown> | undefined> {
      if (!reproducible) return undefined;
      const form = directForm(request);
      if (!form || form.grant_type !== 'client_credentials' || !Object.keys(form).every((name) => PARAMETERS.has(name))) return undefined;
      if (!isValidScope(form.scope)) return undefined;

      const client = await knownBasicClient(provider, secrets, request.headers);
      if (!client || !client.grantTypeAllowed('client_credentials')) return undefined;
      if (client.dpopBoundAccessTokens || client.tlsClientCertificateBoundAccessTokens) return undefined;
      const requested = new Set(form.scope?.split(' '));
      if (!allowed(client, requested)) return undefined;

      // Without a `resource` parameter, the default resource (one absolute URI without a fragment).
      const { resourceIndicators } = features;
      const resource = await resourceIndicators.defaultResource(undefined, client);
      if (typeof resource !== 'string') return undefined;
      const href = URL.parse(resource)?.href;
      if (!href || href.includes('#')) return undefined;
      const info = validResourceServer(await resourceIndicators.getResourceServerInfo(undefined, resource, client)) as ResourceServerInfo;
      const resourceServer = new models.ResourceServer(resource, info);

      const scopes = [...requested];
      const token = new models.ClientCredentials({ client, scope: scopes.join(' ') || undefined });
      token.resourceServer = resourceServer;
      const served = new Set(resourceServer.scope.split(' '));
      token.scope = scopes.filter((scope) => served.has(scope)).join(' ') || undefined;
      const value = await token.save();

      // oidc-provider's buildTokenResponse: these members in this order, an empty scope left out.
      const body: Record<string, unknown> = { access_token: value, expires_in: token.expiration };
      if (token.scope) body.scope = token.scope;
      body.token_type = token.tokenType;
      return body;
    },
  };
}

export type DirectClientCredentials = ReturnType<typeof createDirectClientCredentials>;
