import { randomUUID } from 'node:crypto';
import { seal, unseal, type SealingKey } from '../lib/crypto.js';
import type { Db } from './database.js';
import type { Sql } from './sql.js';

/**
 * Users' second factors, one row each in `user_factors` (migration 0010), told apart by `kind`:
 * - `totp`: an authenticator; its base32 secret sealed with the payload key (AES-256-GCM), the context
 *   naming the row (`factor:<id>`) so a sealed secret cannot be moved to another row. Unconfirmed until
 *   the user has typed one good code; `last_step` is the time step of the last code accepted, so each
 *   code is accepted once (one conditional update).
 * - `recovery`: one recovery code; `lookup` holds its hash (made by the caller, never the code), used once
 *   through one conditional update of `used_at`.
 * - `passkey`: a WebAuthn credential; `lookup` its credential id (base64url, indexed: a passwordless
 *   sign-in starts from it), `secret` its public key and transports sealed like a TOTP secret (a public key
 *   is no secret, but sealed it cannot be swapped for an attacker's by whoever can write to the table),
 *   `last_step` the authenticator's signature counter, `used_at` when it was last used.
 */
export const FACTOR_KINDS = ['totp', 'recovery', 'passkey'] as const;
export type FactorKind = (typeof FACTOR_KINDS)[number];

export interface TotpFactor {
  id: string;
  secret: string;
  confirmed: boolean;
  lastStep: number | null;
}

export interface FactorSummary {
  totp: boolean;
  recoveryCodesLeft: number;
  passkeys: number;
}

/** A passkey as the account page lists it. */
export interface PasskeySummary {
  id: string;
  label: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** A passkey as an assertion is verified against it. */
export interface StoredPasskey {
  id: string;
  userId: string;
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  transports: string[];
  counter: number;
}

export function createFactorStore(db: Db, sql: Sql, keys: { payloadKey: SealingKey; payloadKeys: ReadonlyMap<string, Buffer> }) {
  const context = (id: string) => `factor:${id}`;

  return {
    /** What a user has enrolled (confirmed authenticators, unused recovery codes). */
    async summary(userId: string): Promise<FactorSummary> {
      // A prepared statement, not Prisma: every password sign-in asks it (bench/ANALYSIS.md).
      const rows = await sql.all<{ kind: string; confirmedAt: Date | null; usedAt: Date | null }>(
        `SELECT "kind", "confirmed_at" AS "confirmedAt", "used_at" AS "usedAt" FROM "user_factors" WHERE "user_id" = ?`,
        [userId],
      );
      return {
        totp: rows.some((r) => r.kind === 'totp' && r.confirmedAt),
        recoveryCodesLeft: rows.filter((r) => r.kind === 'recovery' && !r.usedAt).length,
        passkeys: rows.filter((r) => r.kind === 'passkey').length,
      };
    },

    /** The user's authenticators (confirmed, or the one waiting for its first code), secrets unsealed. */
    async totpFactors(userId: string, { confirmed }: { confirmed: boolean }): Promise<TotpFactor[]> {
      const rows = await db.userFactor.findMany({ where: { userId, kind: 'totp', confirmedAt: confirmed ? { not: null } : null } });
      return rows.flatMap((row) => {
        const secret = row.secret ? unseal(row.secret, keys.payloadKeys, context(row.id)) : undefined;
        return secret ? [{ id: row.id, secret, confirmed: !!row.confirmedAt, lastStep: row.lastStep }] : [];
      });
    },

    /** Starts an enrolment: an unconfirmed authenticator replacing any earlier unconfirmed one. */
    async addPendingTotp(userId: string, secret: string, label: string): Promise<void> {
      const id = randomUUID();
      await db.$transaction([
        db.userFactor.deleteMany({ where: { userId, kind: 'totp', confirmedAt: null } }),
        db.userFactor.create({ data: { id, userId, kind: 'totp', secret: seal(secret, keys.payloadKey, context(id)), label, createdAt: new Date() } }),
      ]);
    },

    /**
     * Accepts a code's time step for this authenticator once: false when this step (or a later one) was
     * already accepted. Confirms a pending enrolment, which then replaces the user's other authenticators.
     */
    async acceptTotpStep(userId: string, id: string, step: number): Promise<boolean> {
      const now = new Date();
      const { count } = await db.userFactor.updateMany({
        where: { id, userId, kind: 'totp', OR: [{ lastStep: null }, { lastStep: { lt: step } }] },
        data: { lastStep: step },
      });
      if (count !== 1) return false;
      const pending = await db.userFactor.updateMany({ where: { id, confirmedAt: null }, data: { confirmedAt: now } });
      if (pending.count) await db.userFactor.deleteMany({ where: { userId, kind: 'totp', id: { not: id } } });
      return true;
    },

    /** Removes the user's authenticators; how many there were. */
    async removeTotp(userId: string): Promise<number> {
      return (await db.userFactor.deleteMany({ where: { userId, kind: 'totp' } })).count;
    },

    /** Replaces the user's recovery codes with these hashes. */
    async replaceRecoveryCodes(userId: string, hashes: string[]): Promise<void> {
      const createdAt = new Date();
      await db.$transaction([
        db.userFactor.deleteMany({ where: { userId, kind: 'recovery' } }),
        db.userFactor.createMany({ data: hashes.map((lookup) => ({ id: randomUUID(), userId, kind: 'recovery', lookup, createdAt })) }),
      ]);
    },

    /** Uses the recovery code with this hash once: true only for the one call that marked it used. */
    async useRecoveryCode(userId: string, hash: string): Promise<boolean> {
      const { count } = await db.userFactor.updateMany({ where: { userId, kind: 'recovery', lookup: hash, usedAt: null }, data: { usedAt: new Date() } });
      return count === 1;
    },

    /** Adds a verified passkey (its credential id, public key, transports and first counter). */
    async addPasskey(userId: string, passkey: Omit<StoredPasskey, 'id' | 'userId'>, label: string): Promise<void> {
      const id = randomUUID();
      const now = new Date();
      const sealed = seal(JSON.stringify({ publicKey: passkey.publicKey, transports: passkey.transports }), keys.payloadKey, context(id));
      await db.userFactor.create({
        data: { id, userId, kind: 'passkey', lookup: passkey.credentialId, secret: sealed, label, lastStep: passkey.counter, createdAt: now, confirmedAt: now },
      });
    },

    async passkeys(userId: string): Promise<PasskeySummary[]> {
      const rows = await db.userFactor.findMany({ where: { userId, kind: 'passkey' }, orderBy: { createdAt: 'asc' } });
      return rows.map((row) => ({ id: row.id, label: row.label ?? 'Passkey', createdAt: row.createdAt, lastUsedAt: row.usedAt }));
    },

    /** The passkey with this credential id (the user's only, when `userId` is given), public key unsealed. */
    async findPasskey(credentialId: string, userId?: string): Promise<StoredPasskey | undefined> {
      const row = await db.userFactor.findFirst({ where: { kind: 'passkey', lookup: credentialId, ...(userId ? { userId } : {}) } });
      const opened = row?.secret ? unseal(row.secret, keys.payloadKeys, context(row.id)) : undefined;
      if (!row || !opened) return undefined;
      const { publicKey, transports } = JSON.parse(opened) as { publicKey: string; transports: string[] };
      return { id: row.id, userId: row.userId, credentialId: row.lookup!, publicKey, transports, counter: row.lastStep ?? 0 };
    },

    /** The user's passkeys' credential ids and transports (to list in a WebAuthn request). */
    async passkeyCredentials(userId: string): Promise<{ id: string; transports: string[] }[]> {
      const rows = await db.userFactor.findMany({ where: { userId, kind: 'passkey' } });
      return rows.flatMap((row) => {
        const opened = row.secret && row.lookup ? unseal(row.secret, keys.payloadKeys, context(row.id)) : undefined;
        return opened ? [{ id: row.lookup!, transports: (JSON.parse(opened) as { transports: string[] }).transports }] : [];
      });
    },

    /**
     * Records a use with this signature counter, once: false when the stored counter is not below it (a
     * replayed or cloned authenticator), unless both are 0 (an authenticator that keeps no counter).
     */
    async advancePasskeyCounter(id: string, counter: number): Promise<boolean> {
      const { count } = await db.userFactor.updateMany({
        where: { id, kind: 'passkey', OR: counter === 0 ? [{ lastStep: 0 }, { lastStep: null }] : [{ lastStep: null }, { lastStep: { lt: counter } }] },
        data: { lastStep: counter, usedAt: new Date() },
      });
      return count === 1;
    },

    async renamePasskey(userId: string, id: string, label: string): Promise<boolean> {
      return (await db.userFactor.updateMany({ where: { id, userId, kind: 'passkey' }, data: { label } })).count === 1;
    },

    async removePasskey(userId: string, id: string): Promise<boolean> {
      return (await db.userFactor.deleteMany({ where: { id, userId, kind: 'passkey' } })).count === 1;
    },

    /** Removes every factor of the user (a lost device, the user deleted); how many rows went. */
    async removeAll(userId: string): Promise<number> {
      return (await db.userFactor.deleteMany({ where: { userId } })).count;
    },
  };
}

export type FactorStore = ReturnType<typeof createFactorStore>;
