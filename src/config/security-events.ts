import type { EventEmitter } from 'node:events';
import type { Logger } from './logger.js';

/**
 * Every security-relevant event Tally reports, by the name it carries in the log (`event`) and on
 * /metrics (`tally_security_events_total{event}`). One list, so that a new one is counted too.
 */
export const SECURITY_EVENTS = {
  sign_in_failed: 'a sign-in with a wrong password or an unknown or disabled username',
  account_locked: 'an account locked after consecutive failed sign-ins (and each refusal during the lockout)',
  address_throttled: 'a client IP refused after failed sign-ins across accounts',
  user_code_failed: 'a wrong device user_code',
  client_auth_failed: 'a client authentication with a wrong or missing secret or client certificate',
  admin_auth_failed: 'an admin API call with missing or wrong credentials, or without the admin scope',
  refresh_token_reused: 'a rotated refresh token presented again (its grant revoked)',
  code_replayed: 'an authorization or device code presented again (its grant revoked)',
  forged_token: 'a token that claims to be Tally’s but is not (bad signature, unknown key, bad seal)',
  factor_enrolled: 'a second factor enrolled (an authenticator confirmed, recovery codes generated, a passkey added)',
  factor_removed: 'a second factor removed (by the user, or an operator resetting a lost device)',
  second_factor_failed: 'a wrong one-time code (authenticator or recovery code) after a right password',
  second_factor_locked: 'one-time codes for an account refused after consecutive wrong ones',
  passkey_failed: 'a passkey assertion refused (bad signature, unknown or another user’s credential, no user verification, a counter gone back)',
  recovery_code_used: 'a recovery code used (each works once)',
  overloaded: 'expensive work refused because its bound was reached',
  malformed_http:
    'a request the HTTP parser refused (not HTTP/1.1, a conflicting Content-Length or Transfer-Encoding as in request smuggling, header lines too many or too large, headers too slow)',
  shared_store_fallback: 'Redis did not answer: throttle counts or one-time marks kept in the database until it does (once per outage and store)',
} as const;

export type SecurityEventName = keyof typeof SECURITY_EVENTS;

/** The emitter channel metrics listen on: `{ event }`. */
export const SECURITY_EVENT = 'security';

/** Never a secret, password, token or code value among the fields: names, ids, addresses, counts. */
export type SecurityEventFields = Record<string, string | number | boolean | undefined>;

export interface SecurityEvents {
  report(event: SecurityEventName, fields?: SecurityEventFields): void;
}

/** A structured warning with an `event` field, and one count on `events` for /metrics. */
export function createSecurityEvents(logger: Logger, events: EventEmitter): SecurityEvents {
  return {
    report(event, fields = {}) {
      logger.warn({ ...fields, event }, SECURITY_EVENTS[event]);
      events.emit(SECURITY_EVENT, { event });
    },
  };
}
