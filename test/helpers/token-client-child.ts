// A separate process with its own token client: prints "ready", waits for a line on stdin, then
// prints {"token": ...} (or {"error": ...}) and exits. Reads ISSUER, CLIENT_ID, CLIENT_SECRET,
// SCOPE and REDIS_URL from the environment.
import { createInterface } from 'node:readline';
import { createTokenClient } from '../../src/kits/client/index.ts';

const client = createTokenClient({
  issuer: process.env.ISSUER!,
  clientId: process.env.CLIENT_ID!,
  clientSecret: process.env.CLIENT_SECRET!,
  ...(process.env.SCOPE ? { scope: process.env.SCOPE } : {}),
  ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
});

const lines = createInterface({ input: process.stdin });
console.log('ready');
for await (const _line of lines) break;
try {
  console.log(JSON.stringify({ token: await client.getToken() }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error) }));
}
await client.close();
lines.close();
