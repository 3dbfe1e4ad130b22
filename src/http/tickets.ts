import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../lib/crypto.js';

/**
 * Short-lived signed statements the pages hand to the browser and read back: "this user gave the right
 * password for this interaction" (a hidden field of the second-factor page) and the account page's
 * session (a cookie). An HMAC of the purpose and the JSON, with the expiry inside; nothing secret in it.
 */
export function createTickets(key: string, clock: () => number = Date.now) {
  const mac = (purpose: string, body: string) => createHmac('sha256', key).update(`ticket:${purpose}:${body}`).digest('base64url');
  return {
    issue(purpose: string, claims: Record<string, unknown>, ttlSeconds: number): string {
      const body = Buffer.from(JSON.stringify({ ...claims, exp: Math.floor(clock() / 1000) + ttlSeconds })).toString('base64url');
      return `${body}.${mac(purpose, body)}`;
    },
    /** The claims of a ticket issued for this purpose and not expired; undefined otherwise. */
    open<T extends object>(purpose: string, ticket: unknown): T | undefined {
      if (typeof ticket !== 'string' || ticket.length > 2000) return undefined;
      const [body, signature, extra] = ticket.split('.');
      if (!body || !signature || extra !== undefined || !constantTimeEqual(mac(purpose, body), signature)) return undefined;
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as T & { exp: number };
      return claims.exp > clock() / 1000 ? claims : undefined;
    },
  };
}

export type Tickets = ReturnType<typeof createTickets>;
