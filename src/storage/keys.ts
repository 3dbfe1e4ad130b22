import { randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { seal, unseal, type SealingKey } from '../lib/crypto.js';
import { isUniqueViolation, type Db } from './database.js';

/** Everything secret the server needs, generated on first start and kept so a restart invalidates nothing. */
export interface Keyring {
  /** Private signing JWKs, the one to sign with first for each algorithm (oidc-provider takes the first). */
  signingKeys: JWK[];
  /** Changes whenever the published or signing keys change: the cue to rebuild the provider. */
  signingFingerprint: string;
  /** Cookie signing keys, newest first. */
  cookieKeys: string[];
  /** Key that seals stored payloads now; `payloadKeys` opens older ones too. */
  payloadKey: SealingKey;
  payloadKeys: Map<string, Buffer>;
  /** Key of the HMAC-SHA-256 that stored client secrets are (storage/client-secrets.ts); `clientSecretKeys` has every one by id. */
  clientSecretKey: SealingKey;
  clientSecretKeys: Map<string, Buffer>;
  /** The secret of DPoP server nonces (oidc-provider's features.dPoP.nonceSecret, 32 bytes): the same on every replica. */
  dpopNonceSecret: Buffer;
}

export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const;

async function makeSigningKey(alg: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

/** Inserts a row unless another process got there first; then the existing row wins. */
async function insertOnce(db: Db, row: { id: string; use: string; alg: string; material: string }): Promise<void> {
  try {
    await db.key.create({ data: { ...row, createdAt: new Date() } });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
  }
}

/**
 * The root key wraps every other key. Given by environment (TALLY_SECRET_KEY) it never touches the
 * database; otherwise it is generated once and kept there, which protects nothing against someone who
 * reads the whole database but keeps rotation and restarts simple.
 */
async function loadRootKey(db: Db, secretKey: Buffer | undefined): Promise<SealingKey> {
  if (secretKey) return { id: 'env', key: secretKey };
  await insertOnce(db, { id: 'root', use: 'root', alg: 'A256GCM', material: randomBytes(32).toString('base64url') });
  const row = await db.key.findUniqueOrThrow({ where: { id: 'root' } });
  return { id: 'root', key: Buffer.from(row.material, 'base64url') };
}

function openMaterial(root: SealingKey, row: { id: string; material: string }): string {
  const plain = unseal(row.material, new Map([[root.id, root.key]]), `key:${row.id}`);
  if (plain === undefined) throw new Error(`key ${row.id} cannot be opened with the configured root key`);
  return plain;
}

async function ensureInitialKeys(db: Db, root: SealingKey): Promise<void> {
  const wrap = (id: string, plain: string) => seal(plain, root, `key:${id}`);
  const existing = new Set((await db.key.findMany({ select: { id: true } })).map((k) => k.id));
  if (!existing.has('payload-1'))
    await insertOnce(db, { id: 'payload-1', use: 'payload', alg: 'A256GCM', material: wrap('payload-1', randomBytes(32).toString('base64url')) });
  if (!existing.has('cookie-1'))
    await insertOnce(db, { id: 'cookie-1', use: 'cookie', alg: 'HS256', material: wrap('cookie-1', randomBytes(32).toString('base64url')) });
  if (!existing.has('client-secret-1'))
    await insertOnce(db, {
      id: 'client-secret-1',
      use: 'client-secret',
      alg: 'HS256',
      material: wrap('client-secret-1', randomBytes(32).toString('base64url')),
    });
  if (!existing.has('dpop-nonce-1'))
    await insertOnce(db, { id: 'dpop-nonce-1', use: 'dpop-nonce', alg: 'A256GCM', material: wrap('dpop-nonce-1', randomBytes(32).toString('base64url')) });
  for (const alg of SIGNING_ALGORITHMS) {
    const id = `sig-${alg.toLowerCase()}-1`;
    if (!existing.has(id)) await insertOnce(db, { id, use: 'sig', alg, material: wrap(id, JSON.stringify(await makeSigningKey(alg))) });
  }
}

/**
 * Which signing key to use per algorithm: the newest one older than the activation delay (so that
 * every replica publishes a new key before any signs with it), else the oldest one.
 */
function orderForSigning<T extends { alg: string; createdAt: Date }>(rows: T[], activationDelayMs: number): T[] {
  const now = Date.now();
  const ordered: T[] = [];
  for (const alg of new Set(rows.map((r) => r.alg))) {
    const ofAlg = rows.filter((r) => r.alg === alg).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    const active = ofAlg.find((r) => r.createdAt.getTime() <= now - activationDelayMs) ?? ofAlg.at(-1)!;
    ordered.push(active, ...ofAlg.filter((r) => r !== active));
  }
  return ordered;
}

export async function loadKeyring(db: Db, secretKey?: Buffer, activationDelayMs = 0): Promise<Keyring> {
  const root = await loadRootKey(db, secretKey);
  await ensureInitialKeys(db, root);
  const rows = await db.key.findMany({ where: { use: { not: 'root' } }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  const live = rows.filter((r) => !r.retiredAt || r.retiredAt > new Date());
  const payloadRows = rows.filter((r) => r.use === 'payload');
  const payloadKeys = new Map(payloadRows.map((r) => [r.id, Buffer.from(openMaterial(root, r), 'base64url')]));
  const current = payloadRows[0]!;
  const clientSecretRows = rows.filter((r) => r.use === 'client-secret');
  const clientSecretKeys = new Map(clientSecretRows.map((r) => [r.id, Buffer.from(openMaterial(root, r), 'base64url')]));
  const signing = orderForSigning(
    live.filter((r) => r.use === 'sig'),
    activationDelayMs,
  );
  return {
    signingKeys: signing.map((r) => JSON.parse(openMaterial(root, r)) as JWK),
    signingFingerprint: signing.map((r) => r.id).join(','),
    cookieKeys: live.filter((r) => r.use === 'cookie').map((r) => openMaterial(root, r)),
    payloadKey: { id: current.id, key: payloadKeys.get(current.id)! },
    payloadKeys,
    clientSecretKey: { id: clientSecretRows[0]!.id, key: clientSecretKeys.get(clientSecretRows[0]!.id)! },
    clientSecretKeys,
    dpopNonceSecret: Buffer.from(openMaterial(root, rows.find((r) => r.id === 'dpop-nonce-1')!), 'base64url'),
  };
}

/** A signing key as the admin API shows it: never its material. */
export interface SigningKeyRow {
  kid: string;
  alg: string;
  /** `active`: signs now; `published`: in the JWKS, not signing; `retired`: gone from the JWKS. */
  status: 'active' | 'published' | 'retired';
  createdAt: Date;
  retiredAt: Date | null;
}

/**
 * Every signing key, newest first, with its status judged as loadKeyring judges it (orderForSigning:
 * the first of each algorithm signs). The kid is read from the sealed JWK; nothing else leaves here.
 */
export async function listSigningKeys(db: Db, secretKey: Buffer | undefined, activationDelayMs: number): Promise<SigningKeyRow[]> {
  const root = await loadRootKey(db, secretKey);
  const rows = await db.key.findMany({ where: { use: 'sig' }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  const now = new Date();
  const live = rows.filter((r) => !r.retiredAt || r.retiredAt > now);
  const ordered = orderForSigning(live, activationDelayMs);
  const active = new Set(ordered.filter((r, i) => i === 0 || ordered[i - 1]!.alg !== r.alg));
  return rows.map((r) => ({
    kid: (JSON.parse(openMaterial(root, r)) as JWK).kid!,
    alg: r.alg,
    status: active.has(r) ? 'active' : live.includes(r) ? 'published' : 'retired',
    createdAt: r.createdAt,
    retiredAt: r.retiredAt,
  }));
}

/**
 * Adds a new signing key per algorithm. The older ones stay published until `retiredAt` (the
 * activation delay plus the longest lifetime of a token they signed, from now), then leave the JWKS.
 */
export async function addSigningKeys(db: Db, secretKey: Buffer | undefined, retiredAt: Date): Promise<{ kid: string; alg: string; retires?: string }[]> {
  const root = await loadRootKey(db, secretKey);
  await db.key.updateMany({ where: { use: 'sig', retiredAt: null }, data: { retiredAt } });
  const added = [];
  for (const alg of SIGNING_ALGORITHMS) {
    const jwk = await makeSigningKey(alg);
    const id = `sig-${alg.toLowerCase()}-${randomUUID()}`;
    await db.key.create({ data: { id, use: 'sig', alg, material: seal(JSON.stringify(jwk), root, `key:${id}`), createdAt: new Date() } });
    added.push({ kid: jwk.kid!, alg });
  }
  return added;
}
