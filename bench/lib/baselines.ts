import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, importJWK } from 'jose';
import { basic, FORM, postForm } from './http.ts';
import { cannonRun, loopRun, type RunOnce } from './measure.ts';
import { freePort, spawnChild, waitUntilServing, type Child } from './processes.ts';
import { root } from './tally.ts';

export interface BaselineServer {
  url: string;
  child: Child;
  /** GET the url as fast as possible, or at a rate (autocannon); `paced` for an evenly paced loop. */
  run: RunOnce & { paced: RunOnce };
  stop(): Promise<number | null>;
}

/** Spawns bench/baselines/<file> (plain JavaScript, no loader) on a free port; `path` answers 2xx once it serves. */
export async function startBaseline(file: string, options: { path?: string; env?: Record<string, string>; node?: string } = {}): Promise<BaselineServer> {
  const port = await freePort();
  const child = spawnChild(options.node ?? process.execPath, [join(root, 'bench/baselines', file)], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port), ...options.env },
  });
  const url = `http://127.0.0.1:${port}${options.path ?? '/'}`;
  await waitUntilServing(url, child);
  return { url, child, run: cannonRun({ url }), stop: () => child.stop() };
}

export interface PeerServer {
  child: Child;
  /** POST /token, client_credentials, scope api:read, client_secret_basic. */
  clientCredentials: RunOnce;
  /** POST /token/introspection of one token it issued, by the same client (issue it first with `issueHot`). */
  introspection: RunOnce;
  /**
   * Issues the hot token and checks that it introspects as active. Its in-memory adapter keeps the last
   * 1,000 entries only (an LRU), so the token is issued after the client-credentials runs, and
   * `checkHot` afterwards proves every answer measured was about a live token.
   */
  issueHot(): Promise<void>;
  checkHot(): Promise<void>;
  stop(): Promise<number | null>;
}

/** node-oidc-provider alone (bench/baselines/oidc-provider-alone.mjs): the peer of issue 20. */
export async function startPeer(options: { node?: string } = {}): Promise<PeerServer> {
  const clientId = 'bench-peer';
  const secret = randomBytes(24).toString('base64url');
  const server = await startBaseline('oidc-provider-alone.mjs', {
    path: '/.well-known/openid-configuration',
    env: { CLIENT_ID: clientId, CLIENT_SECRET: secret },
    ...options,
  });
  const origin = new URL(server.url).origin;
  const auth = basic(clientId, secret);
  const headers = { authorization: auth, 'content-type': FORM, accept: 'application/json' };
  const issue = async () => {
    const issued = await postForm<{ access_token?: string; token_type?: string }>(
      `${origin}/token`,
      { grant_type: 'client_credentials', scope: 'api:read' },
      auth,
    );
    if (!issued.access_token || issued.token_type !== 'Bearer') throw new Error(`the peer's token endpoint answered ${JSON.stringify(issued)}`);
    return issued.access_token;
  };
  let hot = '';
  const checkHot = async () => {
    const answer = await postForm<{ active?: boolean }>(`${origin}/token/introspection`, { token: hot }, auth);
    if (answer.active !== true) throw new Error(`the peer introspected its hot token as ${JSON.stringify(answer)}`);
  };
  try {
    await issue();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    child: server.child,
    clientCredentials: cannonRun({ url: `${origin}/token`, method: 'POST', headers, body: 'grant_type=client_credentials&scope=api%3Aread' }),
    introspection: (connections, seconds, rate) =>
      cannonRun({ url: `${origin}/token/introspection`, method: 'POST', headers, body: `token=${encodeURIComponent(hot)}` })(connections, seconds, rate),
    issueHot: async () => {
      hot = await issue();
      await checkHot();
    },
    checkHot,
    stop: server.stop,
  };
}

/** Raw jose ES256 signing of an RFC 9068-shaped access token, in this process (the crypto floor). */
export async function joseSigning(): Promise<{ sign: RunOnce; verify: RunOnce }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = randomUUID();
  const jwk = await exportJWK(publicKey);
  const verifyKey = await importJWK({ ...jwk, alg: 'ES256' }, 'ES256');
  const issuer = 'http://localhost:3000';
  const sign = () =>
    new SignJWT({ client_id: 'bench', scope: 'api:read' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .setIssuer(issuer)
      .setSubject('bench')
      .setAudience(issuer)
      .setIssuedAt()
      .setExpirationTime('1h')
      .setJti(randomUUID())
      .sign(privateKey);
  const sample = await sign();
  return {
    sign: loopRun(async () => {
      await sign();
    }),
    verify: loopRun(async () => {
      await jwtVerify(sample, verifyKey, { issuer, typ: 'at+jwt' });
    }),
  };
}
