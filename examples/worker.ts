// A worker calling the protected API with a client-credentials token (fetched, cached and renewed by
// the client kit). ISSUER, CLIENT_ID, CLIENT_SECRET: the worker's client, allowed the api:read scope.
import { createTokenClient } from 'tally/client';

const client = createTokenClient({
  issuer: process.env.ISSUER!,
  clientId: process.env.CLIENT_ID!,
  clientSecret: process.env.CLIENT_SECRET!,
  scope: 'api:read',
  redisUrl: process.env.REDIS_URL, // optional: one token shared by every worker process
});

const api = process.env.API_URL ?? 'http://localhost:4000/reports';
for (let i = 0; i < 3; i++) {
  // Bearer token attached; on a 401 the token is renewed and the call retried once.
  const response = await client.fetch(api);
  console.log(response.status, await response.json());
  await new Promise((r) => setTimeout(r, 1000));
}
await client.close();
