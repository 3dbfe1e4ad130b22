import { PASSKEY_CHALLENGE_TTL } from '../oidc/passkeys.js';
import type { Tickets } from './tickets.js';

/**
 * A WebAuthn challenge travels to the browser and back inside a signed ticket (tickets.ts) naming what
 * it is bound to: the account page's session (`account:<sid>:<purpose>`) or an interaction and the user
 * who gave the password (`interaction:<uid>:<sub>`). So the challenge verified is the one the server
 * made for this session, never one the browser chose; oidc/passkeys.ts takes each one once.
 */
const TICKET = 'passkey-challenge';

export function createPasskeyChallenges(tickets: Tickets) {
  return {
    issue: (binding: string, challenge: string): string => tickets.issue(TICKET, { binding, challenge }, PASSKEY_CHALLENGE_TTL),
    /** The challenge of a ticket issued for `binding` and not expired; undefined otherwise. */
    open(binding: string, ticket: unknown): string | undefined {
      const claims = tickets.open<{ binding?: unknown; challenge?: unknown }>(TICKET, ticket);
      return claims?.binding === binding && typeof claims.challenge === 'string' ? claims.challenge : undefined;
    },
  };
}

export type PasskeyChallenges = ReturnType<typeof createPasskeyChallenges>;
