// A separate process with its own token client: prints "ready", waits for a line on stdin, then
// prints {"token": ...} (or {"error": ...}) and exits. Reads ISSUER, CLIENT_ID, CLIENT_SECRET,
// SCOPE and REDIS_URL from the environment; with DPOP_URL set, the client uses DPoP and the answer
// carries `dpop` too: a proof for a GET of that URL.
import { createInterface } from 'node:readline';
import { createTokenClient } from '../../src/kits/client/index.ts';

const client = createTokenClient({
  issuer: process.env.ISSUER!,
  clientId: process.env.CLIENT_ID!,
  clientSecret: process.env.CLIENT_SECRET!,
  ...(process.env.SCOPE ? { scope: process.env.SCOPE } : {}),
  ...(process.env.REDIS_URL ? { redisUrl: process.env.REDIS_URL } : {}),
  ...(process.env.DPOP_URL ? { dpop: true } : {}),
});

const lines = createInterface({ input: process.stdin });
console.log('ready');
for await (const _line of lines) break;
try {
  if (process.env.DPOP_URL) {
    const { token, headers } = await client.getAuthorization('GET', process.env.DPOP_URL);
    console.log(JSON.stringify({ token, dpop: headers.dpop }));
  } else console.log(JSON.stringify({ token: await client.getToken() }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error) }));
}
await client.close();
lines.close();
