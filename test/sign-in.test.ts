import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import pino from 'pino';
import { createSecurityEvents } from '../src/config/security-events.ts';
import { createSignIn } from '../src/oidc/sign-in.ts';
import { createFactorStore } from '../src/storage/factors.ts';
import { createThrottleCounterStore } from '../src/storage/throttle-counters.ts';
import { createUserStore } from '../src/storage/users.ts';
import { createThrottle, THROTTLE_POLICIES, type Throttle } from '../src/tokens/throttle.ts';
import { unique } from './helpers/fixtures.ts';
import { useTestStorage } from './helpers/storage.ts';

// A password sign-in's reads (the user row, the second factors) are prepared statements, not Prisma
// queries, and a sign-in with no failure counted writes nothing to the throttle (bench/ANALYSIS.md).
// What they answer is what the Prisma queries answered, on both databases.

const opened = useTestStorage();
const users = () => createUserStore(opened.storage.db, opened.storage.sql);
const KEYS = { payloadKey: { id: 'k', key: Buffer.alloc(32, 1) }, payloadKeys: new Map([['k', Buffer.alloc(32, 1)]]) };

describe('the sign-in reads', () => {
  test('authenticate: the right password → the user (roles, not disabled); a wrong one, an unknown name or a disabled account → none', async () => {
    const store = users();
    const username = unique('reader');
    const created = await store.create({ username, password: 'right password', email: 'r@example.com', roles: ['admin'] });
    assert.deepEqual(await store.authenticate(username, 'right password'), created);
    assert.equal(await store.authenticate(username, 'wrong password'), undefined);
    assert.equal(await store.authenticate(unique('nobody'), 'right password'), undefined);
    await store.update(created.id, { disabled: true });
    assert.equal(await store.authenticate(username, 'right password'), undefined, 'a disabled account');
  });

  test('the factor summary: confirmed authenticators, unused recovery codes and passkeys; an unconfirmed authenticator does not count', async () => {
    const factors = createFactorStore(opened.storage.db, opened.storage.sql, KEYS);
    const userId = randomUUID();
    assert.deepEqual(await factors.summary(userId), { totp: false, recoveryCodesLeft: 0, passkeys: 0 });
    const row = (kind: string, extra: Record<string, unknown> = {}) =>
      opened.storage.db.userFactor.create({ data: { id: randomUUID(), userId, kind, createdAt: new Date(), ...extra } });
    await row('totp');
    assert.deepEqual(await factors.summary(userId), { totp: false, recoveryCodesLeft: 0, passkeys: 0 }, 'pending enrolment');
    await row('totp', { confirmedAt: new Date() });
    await row('recovery', { lookup: 'a' });
    await row('recovery', { lookup: 'b' });
    await row('recovery', { lookup: 'c', usedAt: new Date() });
    await row('passkey', { lookup: 'cred' });
    assert.deepEqual(await factors.summary(userId), { totp: true, recoveryCodesLeft: 2, passkeys: 1 });
  });
});

describe('a successful sign-in and the throttle', () => {
  /** The real throttle over the database, with its `clear` calls counted. */
  function counted(): { throttle: Throttle; clears: string[] } {
    const real = createThrottle(createThrottleCounterStore(opened.storage.db, opened.storage.sql));
    const clears: string[] = [];
    return {
      clears,
      throttle: {
        ...real,
        clear: (policy, subject) => {
          clears.push(`${policy.name}:${subject}`);
          return real.clear(policy, subject);
        },
      },
    };
  }
  const security = createSecurityEvents(pino({ level: 'silent' }), new EventEmitter());

  test('no failure counted → no write to the throttle; after failures → they are cleared', async () => {
    const store = users();
    const username = unique('signer');
    await store.create({ username, password: 'right password' });
    const { throttle, clears } = counted();
    const signIn = createSignIn({ users: store, throttle, security });

    assert.ok((await signIn(username, 'right password', '192.0.2.7')).user);
    assert.deepEqual(clears, [], 'nothing to clear, nothing written');

    for (let i = 0; i < 2; i++) assert.equal((await signIn(username, 'wrong password', '192.0.2.7')).refusal?.status, 401);
    assert.equal((await throttle.check(THROTTLE_POLICIES.account, username)).failures, 2);
    assert.ok((await signIn(username, 'right password', '192.0.2.7')).user);
    assert.equal(clears.length, 1);
    assert.equal((await throttle.check(THROTTLE_POLICIES.account, username)).failures, 0, 'the success cleared the failures');
  });

  test('an account locked by failures is still refused with the right password (the throttle is asked before the password)', async () => {
    const store = users();
    const username = unique('locked');
    await store.create({ username, password: 'right password' });
    const { throttle } = counted();
    const signIn = createSignIn({ users: store, throttle, security });
    for (let i = 0; i < 5; i++) await signIn(username, 'wrong password', '192.0.2.8');
    const refused = await signIn(username, 'right password', '192.0.2.8');
    assert.equal(refused.refusal?.status, 429);
  });
});
