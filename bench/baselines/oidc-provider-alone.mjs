// Baseline (the peer): node-oidc-provider alone, the version in node_modules, as a Node user would run it
// instead of Tally: its default in-memory adapter, one client with its secret in the clear
// (client_secret_basic, client_credentials, scope api:read), client credentials and introspection
// enabled, opaque access tokens (its default format), generated ES256 and RS256 signing keys, no
// logging. Environment: PORT, CLIENT_ID, CLIENT_SECRET.
import http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

const keys = [];
for (const alg of ['ES256', 'RS256']) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  keys.push({ ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-bench` });
}

// Quiet: oidc-provider's start-up notices (the in-memory adapter, default policies) go nowhere.
console.info = () => undefined;
console.warn = () => undefined;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api:read',
    },
  ],
  scopes: ['openid', 'api:read'],
  jwks: { keys },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // oidc-provider's default policy, without its "you should change this" notice.
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => !(client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client.clientId),
    },
  },
});

const server = http.createServer(provider.callback()).listen(port, '127.0.0.1');
server.keepAliveTimeout = 65_000;
process.once('SIGTERM', () => server.close(() => process.exit(0)) && server.closeAllConnections());
