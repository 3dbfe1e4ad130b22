import { randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { seal, unseal, type SealingKey } from '../lib/crypto.js';
import { ConfigError } from '../config/index.js';
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

/** The kid of a stored key's seal: a key of TALLY_SECRET_KEY's, or the root key kept in the database. */
const ENV_SEAL = 'env';
const KEPT_ROOT = 'root';

/**
 * The root keys that wrap every other key. Given by environment (TALLY_SECRET_KEY) they never touch
 * the database: the first seals, and each one opens, so that the key can change (`new,old`). Without
 * it a root key is generated once and kept in the database, which protects nothing against someone
 * who reads the whole database but keeps a first start simple; once TALLY_SECRET_KEY is given, that
 * kept root still opens what it sealed until everything is sealed again (`openStoredKeys`).
 */
interface RootKeys {
  sealing: SealingKey;
  /** The keys that may open a seal, by the seal's kid, in the order they are tried. */
  opening: Record<string, Buffer[]>;
}

async function loadRootKeys(db: Db, secretKeys: readonly Buffer[]): Promise<RootKeys> {
  const readKept = async () => {
    const row = await db.key.findUnique({ where: { id: KEPT_ROOT } });
    return row ? [Buffer.from(row.material, 'base64url')] : [];
  };
  if (secretKeys.length > 0) return { sealing: { id: ENV_SEAL, key: secretKeys[0]! }, opening: { [ENV_SEAL]: [...secretKeys], [KEPT_ROOT]: await readKept() } };
  // Counted before the kept root is read: another process's first start keeps its root before any key.
  const sealed = await db.key.count({ where: { id: { not: KEPT_ROOT } } });
  let kept = await readKept();
  if (kept.length === 0) {
    // Keys without a kept root were sealed with TALLY_SECRET_KEY: a new root beside them would open none.
    if (sealed > 0) throw new ConfigError('TALLY_SECRET_KEY is not set, but the stored keys were sealed with it: set it to the key they were sealed with');
    await insertOnce(db, { id: KEPT_ROOT, use: 'root', alg: 'A256GCM', material: randomBytes(32).toString('base64url') });
    kept = await readKept();
  }
  return { sealing: { id: KEPT_ROOT, key: kept[0]! }, opening: { [KEPT_ROOT]: kept } };
}

/** Why a stored key does not open, for the operator: which key it needs. */
function cannotOpen(id: string, kid: string, roots: RootKeys): string {
  if (kid === ENV_SEAL && !roots.opening[ENV_SEAL])
    return `the stored key ${id} was sealed with TALLY_SECRET_KEY, which is not set: set it to the key it was sealed with`;
  if (kid === ENV_SEAL)
    return `TALLY_SECRET_KEY does not open the stored key ${id}: give the key it was sealed with (to change keys, the new key, a comma, then the old one)`;
  if (kid === KEPT_ROOT) return `the stored key ${id} was sealed with the root key kept in the database, which is missing or does not open it`;
  return `the stored key ${id} has a seal that no root key opens`;
}

/** A stored key's material, opened; `current` if the root key that seals now sealed it. */
function openMaterial(roots: RootKeys, row: { id: string; material: string }): { plain: string; current: boolean } {
  const kid = row.material.slice(0, Math.max(row.material.indexOf('.'), 0));
  for (const key of roots.opening[kid] ?? []) {
    const plain = unseal(row.material, new Map([[kid, key]]), `key:${row.id}`);
    if (plain !== undefined) return { plain, current: kid === roots.sealing.id && key === roots.sealing.key };
  }
  throw new ConfigError(cannotOpen(row.id, kid, roots));
}

const sealMaterial = (roots: RootKeys, id: string, plain: string) => seal(plain, roots.sealing, `key:${id}`);

/**
 * Opens every stored key, and seals again with the sealing root key those another root key sealed (a
 * changed TALLY_SECRET_KEY, or the root kept in the database before it was given), so that the old
 * key can go; once nothing is sealed with the kept root, it is deleted. Each row is replaced only if no
 * one changed it meanwhile (another process doing the same).
 */
async function openStoredKeys<T extends { id: string; material: string }>(db: Db, roots: RootKeys, rows: T[]) {
  const opened = new Map<string, string>();
  const resealed: string[] = [];
  for (const row of rows) {
    const { plain, current } = openMaterial(roots, row);
    opened.set(row.id, plain);
    if (current) continue;
    const { count } = await db.key.updateMany({ where: { id: row.id, material: row.material }, data: { material: sealMaterial(roots, row.id, plain) } });
    if (count > 0) resealed.push(row.id);
  }
  let keptRootDeleted = false;
  if (roots.sealing.id === ENV_SEAL && roots.opening[KEPT_ROOT]!.length > 0) {
    // One statement, so that a key sealed with the kept root by a process without TALLY_SECRET_KEY meanwhile keeps it.
    keptRootDeleted =
      (await db.$executeRaw`DELETE FROM "keys" WHERE "id" = ${KEPT_ROOT} AND NOT EXISTS (SELECT 1 FROM "keys" WHERE "material" LIKE ${`${KEPT_ROOT}.%`})`) > 0;
  }
  return { opened, resealed, keptRootDeleted };
}

/**
 * After writing keys sealed with the root kept in the database: that root is put back if a process
 * given TALLY_SECRET_KEY deleted it meanwhile (`openStoredKeys`), so that what it sealed still opens
 * (and is sealed again by that process's next load).
 */
async function keepRootFor(db: Db, roots: RootKeys): Promise<void> {
  if (roots.sealing.id === KEPT_ROOT) await insertOnce(db, { id: KEPT_ROOT, use: 'root', alg: 'A256GCM', material: roots.sealing.key.toString('base64url') });
}

/** A key every server needs: id, use, algorithm, and how its material is made. */
type InitialKey = [id: string, use: string, alg: string, make: () => Promise<string>];

const INITIAL_KEYS: InitialKey[] = [
  ['payload-1', 'payload', 'A256GCM', async () => randomBytes(32).toString('base64url')],
  ['cookie-1', 'cookie', 'HS256', async () => randomBytes(32).toString('base64url')],
  ['client-secret-1', 'client-secret', 'HS256', async () => randomBytes(32).toString('base64url')],
  ['dpop-nonce-1', 'dpop-nonce', 'A256GCM', async () => randomBytes(32).toString('base64url')],
  ...SIGNING_ALGORITHMS.map((alg): InitialKey => [`sig-${alg.toLowerCase()}-1`, 'sig', alg, async () => JSON.stringify(await makeSigningKey(alg))]),
];

/** Makes the initial keys that `existing` lacks (a first start, or a version that needs a new one); whether any was missing. */
async function ensureInitialKeys(db: Db, roots: RootKeys, existing: ReadonlySet<string>): Promise<boolean> {
  const missing = INITIAL_KEYS.filter(([id]) => !existing.has(id));
  for (const [id, use, alg, make] of missing) await insertOnce(db, { id, use, alg, material: sealMaterial(roots, id, await make()) });
  if (missing.length > 0) await keepRootFor(db, roots);
  return missing.length > 0;
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

/** What a load of the keyring sealed again (`openStoredKeys`), for the log. */
export interface Resealing {
  keys: string[];
  keptRootDeleted: boolean;
}

export async function loadKeyring(
  db: Db,
  secretKeys: readonly Buffer[],
  activationDelayMs = 0,
  onResealed: (resealing: Resealing) => void = () => undefined,
): Promise<Keyring> {
  const roots = await loadRootKeys(db, secretKeys);
  const readRows = () => db.key.findMany({ where: { use: { not: 'root' } }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  // The stored keys are opened before any is added, so that a wrong root key stops the start before it writes.
  let rows = await readRows();
  let { opened, resealed, keptRootDeleted } = await openStoredKeys(db, roots, rows);
  if (await ensureInitialKeys(db, roots, new Set(rows.map((r) => r.id)))) {
    rows = await readRows();
    ({ opened } = await openStoredKeys(db, roots, rows));
  }
  if (resealed.length > 0 || keptRootDeleted) onResealed({ keys: resealed, keptRootDeleted });
  const plain = (row: { id: string }) => opened.get(row.id)!;
  const live = rows.filter((r) => !r.retiredAt || r.retiredAt > new Date());
  const payloadRows = rows.filter((r) => r.use === 'payload');
  const payloadKeys = new Map(payloadRows.map((r) => [r.id, Buffer.from(plain(r), 'base64url')]));
  const current = payloadRows[0]!;
  const clientSecretRows = rows.filter((r) => r.use === 'client-secret');
  const clientSecretKeys = new Map(clientSecretRows.map((r) => [r.id, Buffer.from(plain(r), 'base64url')]));
  const signing = orderForSigning(
    live.filter((r) => r.use === 'sig'),
    activationDelayMs,
  );
  return {
    signingKeys: signing.map((r) => JSON.parse(plain(r)) as JWK),
    signingFingerprint: signing.map((r) => r.id).join(','),
    cookieKeys: live.filter((r) => r.use === 'cookie').map(plain),
    payloadKey: { id: current.id, key: payloadKeys.get(current.id)! },
    payloadKeys,
    clientSecretKey: { id: clientSecretRows[0]!.id, key: clientSecretKeys.get(clientSecretRows[0]!.id)! },
    clientSecretKeys,
    dpopNonceSecret: Buffer.from(plain({ id: 'dpop-nonce-1' }), 'base64url'),
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
export async function listSigningKeys(db: Db, secretKeys: readonly Buffer[], activationDelayMs: number): Promise<SigningKeyRow[]> {
  const roots = await loadRootKeys(db, secretKeys);
  const rows = await db.key.findMany({ where: { use: 'sig' }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  const now = new Date();
  const live = rows.filter((r) => !r.retiredAt || r.retiredAt > now);
  const ordered = orderForSigning(live, activationDelayMs);
  const active = new Set(ordered.filter((r, i) => i === 0 || ordered[i - 1]!.alg !== r.alg));
  return rows.map((r) => ({
    kid: (JSON.parse(openMaterial(roots, r).plain) as JWK).kid!,
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
export async function addSigningKeys(db: Db, secretKeys: readonly Buffer[], retiredAt: Date): Promise<{ kid: string; alg: string; retires?: string }[]> {
  const roots = await loadRootKeys(db, secretKeys);
  await db.key.updateMany({ where: { use: 'sig', retiredAt: null }, data: { retiredAt } });
  const added = [];
  for (const alg of SIGNING_ALGORITHMS) {
    const jwk = await makeSigningKey(alg);
    const id = `sig-${alg.toLowerCase()}-${randomUUID()}`;
    await db.key.create({ data: { id, use: 'sig', alg, material: sealMaterial(roots, id, JSON.stringify(jwk)), createdAt: new Date() } });
    added.push({ kid: jwk.kid!, alg });
  }
  await keepRootFor(db, roots);
  return added;
}
