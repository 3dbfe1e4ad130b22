import type { EventEmitter } from 'node:events';
import type { Logger } from '../config/logger.js';
import type { ClientSecrets } from '../oidc/client-secrets.js';
import { createDirectClientCredentials } from '../oidc/direct-client-credentials.js';
import { FailedAfterWrite, type DirectOutcome } from '../oidc/direct-guards.js';
import { createDirectIntrospection } from '../oidc/direct-introspection.js';
import { createDirectRefresh } from '../oidc/direct-refresh.js';
import type { ProtocolRequest } from '../oidc/protocol-request.js';
import type { ProviderHolder } from '../oidc/provider-holder.js';
import { UNAVAILABLE_BODY } from '../oidc/unavailable.js';
import { DATABASE_UNAVAILABLE, isDatabaseUnavailable, type UnavailableNotice } from '../storage/unavailable.js';
import type { Metrics } from './metrics.js';

export type DirectEndpoint = 'introspection' | 'token';

/** The endpoints a direct answer may serve (see oidc/direct-*.ts), by exact URL: with a query string, oidc-provider answers. */
const DIRECT_ENDPOINTS = new Map<string, DirectEndpoint>([
  ['/token/introspection', 'introspection'],
  ['/token', 'token'],
]);

export function directEndpointOf(method: string | undefined, url: string): DirectEndpoint | undefined {
  return method === 'POST' ? DIRECT_ENDPOINTS.get(url) : undefined;
}

/** What Tally sends itself: a direct answer, the 503 of a database outage met on the way, or a failure after a write. */
export interface DirectReply {
  status: 200 | 500 | 503;
  body: object;
}

/** oidc-provider's answer to a failure of its own (a 500). */
const SERVER_ERROR_BODY = Object.freeze({ error: 'server_error', error_description: 'oops! something went wrong' });

export interface DirectAnswerDependencies {
  providers: ProviderHolder;
  /** The client-secret comparison (the client store's). */
  secrets: ClientSecrets;
  metrics: Metrics;
  /** Told of a request refused because the database is unavailable (DATABASE_UNAVAILABLE). */
  events: EventEmitter;
  logger: Pick<Logger, 'warn' | 'error'>;
}

const FAILED: DirectOutcome = { declined: 'failed' };

/**
 * The direct answers of the current provider, counted on /metrics: who answered
 * (`tally_protocol_answers_total`) and, for oidc-provider, why (`tally_direct_answer_declines_total`).
 */
export function createDirectAnswers({ providers, secrets, metrics, events, logger }: DirectAnswerDependencies) {
  let direct: Record<DirectEndpoint, { answer(request: ProtocolRequest): Promise<DirectOutcome> }>;
  providers.onProvider((provider) => {
    const clientCredentials = createDirectClientCredentials(provider, secrets);
    const refresh = createDirectRefresh(provider, secrets);
    direct = {
      introspection: createDirectIntrospection(provider, secrets),
      // By grant type; anything else (a repeated or missing one too) meets the client credentials grant's guards, which decline it.
      token: { answer: (request) => (request.form?.grant_type === 'refresh_token' ? refresh : clientCredentials).answer(request) },
    };
  });

  /** The reply to send, or undefined when oidc-provider must answer (it then reports what it meets). */
  return async function answerDirectly(endpoint: DirectEndpoint, request: ProtocolRequest, url: string): Promise<DirectReply | undefined> {
    let outcome: DirectOutcome;
    try {
      outcome = await direct[endpoint].answer(request);
    } catch (thrown) {
      const error = thrown instanceof FailedAfterWrite ? thrown.cause : thrown;
      // A database outage is answered here at once, as oidc-provider would (asking it again would only wait for it again).
      if (isDatabaseUnavailable(error)) {
        events.emit(DATABASE_UNAVAILABLE, { path: url, error } satisfies UnavailableNotice);
        metrics.protocolAnswers.inc({ endpoint, answered_by: 'tally' });
        return { status: 503, body: UNAVAILABLE_BODY };
      }
      if (thrown instanceof FailedAfterWrite) {
        logger.error({ err: error, endpoint, event: 'server_error' }, 'direct answer failed after it wrote');
        metrics.protocolAnswers.inc({ endpoint, answered_by: 'tally' });
        return { status: 500, body: SERVER_ERROR_BODY };
      }
      logger.warn({ err: error, endpoint }, 'direct answer failed; oidc-provider answers instead');
      outcome = FAILED;
    }
    if (outcome.declined) {
      metrics.protocolAnswers.inc({ endpoint, answered_by: 'oidc-provider' });
      metrics.directDeclines.inc({ endpoint, reason: outcome.declined });
      return undefined;
    }
    metrics.protocolAnswers.inc({ endpoint, answered_by: 'tally' });
    return { status: 200, body: outcome.body };
  };
}

export type AnswerDirectly = ReturnType<typeof createDirectAnswers>;
