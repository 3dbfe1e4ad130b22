import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, importJWK } from 'jose';
import { cannonRun, loopRun, type RunOnce } from './measure.ts';
import { freePort, spawnChild, waitUntilServing, type Child } from './processes.ts';
import { root } from './tally.ts';

export interface BaselineServer {
  url: string;
  child: Child;
  run: RunOnce;
  stop(): Promise<number | null>;
}

/** Spawns bench/baselines/<file> (plain JavaScript, no loader) on a free port. */
export async function startBaseline(file: string): Promise<BaselineServer> {
  const port = await freePort();
  const child = spawnChild(process.execPath, [join(root, 'bench/baselines', file)], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}/`;
  await waitUntilServing(url, child);
  return { url, child, run: cannonRun({ url }), stop: () => child.stop() };
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
