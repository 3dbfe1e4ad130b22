import { randomUUID } from 'node:crypto';
import { randomToken } from '../lib/crypto.js';
import type { Db } from './database.js';
import type { Sql } from './sql.js';
import { createCacheStats, type CacheStats } from '../lib/cache-stats.js';
import { createReadCache } from '../lib/read-cache.js';
import { compareClientSecret, keyedSecretHash } from './client-secrets.js';
import type { Keyring } from './keys.js';
import { usesClientSecret } from '../lib/enums.js';

export type ClientMetadata = Record<string, unknown> & { client_id?: string; token_endpoint_auth_method?: string };

export interface StoredClient {
  metadata: ClientMetadata;
  secretHash: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Clients that authenticate with nothing have no secret; every other method here needs one. */
export function needsSecret(metadata: ClientMetadata): boolean {
  return usesClientSecret(metadata.token_endpoint_auth_method ?? 'client_secret_basic');
}

/** A clients row, as the prepared statement and Prisma both read it. */
interface ClientRow {
  metadata: string;
  secretHash: string | null;
  createdAt: Date;
  updatedAt: Date;
}

function toStoredClient(row: ClientRow): StoredClient {
  return { metadata: JSON.parse(row.metadata) as ClientMetadata, secretHash: row.secretHash, createdAt: row.createdAt, updatedAt: row.updatedAt };
}

// Keys in a fixed order: oidc-provider caches client instances by a hash of their JSON.
function sortKeys(metadata: ClientMetadata): ClientMetadata {
  return Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => a.localeCompare(b)));
}

export interface ClientStoreOptions {
  /** The key client secrets are stored under (an HMAC; storage/client-secrets.ts), and every such key by id. */
  secretKeys: Pick<Keyring, 'clientSecretKey' | 'clientSecretKeys'>;
  /** How long a client read is reused (ms); every write here invalidates it at once. */
  cacheTtlMs?: number;
  /** Told about every write, so other replicas can drop their copy (see runtime.ts); the write answers after it. */
  onChange?: (id: string) => void | Promise<void>;
  /** Counts cache hits and misses. */
  stats?: CacheStats;
}

export function createClientStore(db: Db, sql: Sql, { secretKeys, cacheTtlMs = 5_000, onChange, stats = createCacheStats() }: ClientStoreOptions) {
  const hashOf = (secret: string) => keyedSecretHash(secretKeys.clientSecretKey, secret);
  // oidc-provider looks its client up on every request; a short-lived copy saves a query each time.
  const cache = createReadCache<StoredClient | undefined>({ max: 10_000, stats });
  const invalidate = (id: string) => cache.forget(id);
  const changed = async (id: string) => {
    invalidate(id);
    await onChange?.(id);
  };
  return {
    /** Drops the cached copy (a write elsewhere: the CLI or another replica). */
    invalidate,

    /** Stores a new client; the plain secret is returned here and nowhere else. */
    async create(metadata: ClientMetadata): Promise<{ client: StoredClient; clientSecret?: string }> {
      const id = typeof metadata.client_id === 'string' ? metadata.client_id : randomUUID();
      const clientSecret = needsSecret(metadata) ? randomToken() : undefined;
      const now = new Date();
      const clean = sortKeys({ ...metadata, client_id: id });
      delete clean.client_secret;
      const row = await db.client.create({
        data: { id, metadata: JSON.stringify(clean), secretHash: clientSecret ? hashOf(clientSecret) : null, createdAt: now, updatedAt: now },
      });
      return { client: { metadata: clean, secretHash: row.secretHash, createdAt: now, updatedAt: now }, ...(clientSecret ? { clientSecret } : {}) };
    },

    find(id: string): Promise<StoredClient | undefined> {
      return cache.get(
        id,
        async () => {
          const row = await sql.get<ClientRow>(
            `SELECT "metadata", "secret_hash" AS "secretHash", "created_at" AS "createdAt", "updated_at" AS "updatedAt" FROM "clients" WHERE "id" = ?`,
            [id],
          );
          return row && toStoredClient(row);
        },
        (client) => (client ? Date.now() + cacheTtlMs : undefined),
      );
    },

    /**
     * Whether `secret` is the client's secret now. The stored hash is read from the database each time,
     * not from the cached copy, so that a rotation counts at once on every replica (one indexed read;
     * an HMAC costs microseconds). A legacy argon2 hash that matches is stored again as HMAC (unless
     * rotated meanwhile); its argon2 work may be refused (Overloaded). `keyedOnly`: an argon2 hash
     * is not tried and answers false (for callers that let another path do that work).
     */
    async verifySecret(id: string, secret: string, { keyedOnly = false } = {}): Promise<boolean> {
      // Fresh from the database, in the turn's shared snapshot (sql.ts ReadOptions): no older than the turn.
      const row = await sql.get<{ secretHash: string | null }>(`SELECT "secret_hash" AS "secretHash" FROM "clients" WHERE "id" = ?`, [id], {
        turnSnapshot: true,
      });
      const stored = row?.secretHash;
      const { match, legacy } = await compareClientSecret(secretKeys.clientSecretKeys, stored, secret, { keyedOnly });
      if (match && legacy) {
        const { count } = await db.client.updateMany({ where: { id, secretHash: stored! }, data: { secretHash: hashOf(secret) } });
        if (count) await changed(id);
      }
      return match;
    },

    /** Replaces the metadata (a secret is kept, added or dropped as the auth method now needs). */
    async update(id: string, metadata: ClientMetadata): Promise<{ client: StoredClient; clientSecret?: string } | undefined> {
      const row = await db.client.findUnique({ where: { id } });
      if (!row) return undefined;
      const clean = sortKeys({ ...metadata, client_id: id });
      delete clean.client_secret;
      const clientSecret = needsSecret(clean) && !row.secretHash ? randomToken() : undefined;
      const secretHash = needsSecret(clean) ? (clientSecret ? hashOf(clientSecret) : row.secretHash) : null;
      const updated = await db.client.update({ where: { id }, data: { metadata: JSON.stringify(clean), secretHash, updatedAt: new Date() } });
      await changed(id);
      return {
        client: { metadata: clean, secretHash: updated.secretHash, createdAt: updated.createdAt, updatedAt: updated.updatedAt },
        ...(clientSecret ? { clientSecret } : {}),
      };
    },

    /** Oldest first; the cursor is the last client's (created_at, id). */
    async list(limit: number, after?: { createdAt: Date; id: string }): Promise<StoredClient[]> {
      const rows = await db.client.findMany({
        where: after ? { OR: [{ createdAt: { gt: after.createdAt } }, { createdAt: after.createdAt, id: { gt: after.id } }] } : {},
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit,
      });
      return rows.map(toStoredClient);
    },

    async rotateSecret(id: string): Promise<string | undefined> {
      const clientSecret = randomToken();
      const { count } = await db.client.updateMany({ where: { id }, data: { secretHash: hashOf(clientSecret), updatedAt: new Date() } });
      await changed(id);
      return count ? clientSecret : undefined;
    },

    async delete(id: string): Promise<boolean> {
      const { count } = await db.client.deleteMany({ where: { id } });
      await changed(id);
      return count > 0;
    },
  };
}

export type ClientStore = ReturnType<typeof createClientStore>;
