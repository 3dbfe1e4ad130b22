import type { EventEmitter } from 'node:events';
import type { Logger } from '../config/logger.js';
import type { ClientSecrets } from '../oidc/client-secrets.js';
import { createDirectClientCredentials } from '../oidc/direct-client-credentials.js';
import type { DirectOutcome } from '../oidc/direct-guards.js';
import { createDirectIntrospection } from '../oidc/direct-introspection.js';
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

/** What Tally sends itself: a direct answer, or the 503 of a database outage met on the way. */
export interface DirectReply {
  status: 200 | 503;
  body: object;
}

export interface DirectAnswerDependencies {
  providers: ProviderHolder;
  /** The client-secret comparison (the client store's). */
  secrets: ClientSecrets;
  metrics: Metrics;
  /** Told of a request refused because the database is unavailable (DATABASE_UNAVAILABLE). */
  events: EventEmitter;
  logger: Pick<Logger, 'warn'>;
}

const FAILED: DirectOutcome = { declined: 'failed' };

/**
 * The direct answers of the current provider, counted on /metrics: who answered
 * (`tally_protocol_answers_total`) and, for oidc-provider, why (`tally_direct_answer_declines_total`).
 */
export function createDirectAnswers({ providers, secrets, metrics, events, logger }: DirectAnswerDependencies) {
  let direct: Record<DirectEndpoint, { answer(request: ProtocolRequest): Promise<DirectOutcome> }>;
  providers.onProvider((provider) => {
    direct = { introspection: createDirectIntrospection(provider, secrets), token: createDirectClientCredentials(provider, secrets) };
  });

  /** The reply to send, or undefined when oidc-provider must answer (it then reports what it meets). */
  return async function answerDirectly(endpoint: DirectEndpoint, request: ProtocolRequest, url: string): Promise<DirectReply | undefined> {
    let outcome: DirectOutcome;
    try {
      outcome = await direct[endpoint].answer(request);
    } catch (error) {
      // A database outage is answered here at once, as oidc-provider would (asking it again would only wait for it again).
      if (isDatabaseUnavailable(error)) {
        events.emit(DATABASE_UNAVAILABLE, { path: url, error } satisfies UnavailableNotice);
        metrics.protocolAnswers.inc({ endpoint, answered_by: 'tally' });
        return { status: 503, body: UNAVAILABLE_BODY };
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
