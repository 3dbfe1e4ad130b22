import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';
import { createDirectAnswers, type DirectEndpoint } from '../../src/http/direct-answers.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { createClientSecrets, type ClientSecrets } from '../../src/oidc/client-secrets.ts';
import { introspectionAllowedPolicy } from '../../src/oidc/introspection-policy.ts';
import { parseProtocolRequest } from '../../src/oidc/protocol-request.ts';
import { holdProvider } from '../../src/oidc/provider-holder.ts';
import { attachLedger } from '../../src/oidc/provider-ledger.ts';
import { judgeFoundToken, type LedgerManager } from '../../src/tokens/ledger-manager.ts';
import { compareClientSecret, keyedSecretHash } from '../../src/storage/client-secrets.ts';
import { keyPair } from './key-pairs.ts';

export interface Counts {
  /** Answered by Tally directly. */
  direct: number;
  /** Answered by oidc-provider. */
  provider: number;
  /** Declines so far, by reason. */
  declines: Record<string, number>;
}

/** An endpoint's answers and declines in Prometheus text (/metrics). */
export function countsOf(text: string, endpoint: string): Counts {
  const counts: Counts = { direct: 0, provider: 0, declines: {} };
  for (const [, name, labelText, value] of text.matchAll(/^(tally_protocol_answers_total|tally_direct_answer_declines_total)\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...labelText!.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, v]) => [key, v]));
    if (labels.endpoint !== endpoint) continue;
    if (name === 'tally_direct_answer_declines_total') counts.declines[labels.reason!] = Number(value);
    else if (labels.answered_by === 'tally') counts.direct = Number(value);
    else counts.provider = Number(value);
  }
  return counts;
}

export const SECRET = 'in-process-client-secret';

/** The key of the in-process clients' stored secrets, and SECRET stored under it (an HMAC, as Tally stores it). */
const secretKey = { id: 'in-process', key: randomBytes(32) };
export const STORED_SECRET = keyedSecretHash(secretKey, SECRET);

/** oidc-provider's store, in a Map (its own in-memory adapter warns at every start). */
class MapAdapter implements Adapter {
  private static readonly rows = new Map<string, AdapterPayload>();
  constructor(private readonly model: string) {}
  private key = (id: string) => `${this.model}:${id}`;
  async upsert(id: string, payload: AdapterPayload) {
    MapAdapter.rows.set(this.key(id), payload);
  }
  async find(id: string) {
    return MapAdapter.rows.get(this.key(id));
  }
  async findByUserCode() {
    return undefined;
  }
  async findByUid() {
    return undefined;
  }
  async consume(id: string) {
    const row = MapAdapter.rows.get(this.key(id));
    if (row) row.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    MapAdapter.rows.delete(this.key(id));
  }
  async revokeByGrantId() {}
}

const signingKey = { ...keyPair({ type: 'rsa' }).privateJwk, kid: 'in-process', use: 'sig' };

/**
 * An oidc-provider in this process (its in-memory adapter) with Tally's direct answers and metrics in
 * front, as the server has them: for the declines that only a configuration other than Tally's produces.
 */
export function directProvider(configuration: Configuration) {
  const provider = new Provider('http://localhost:3000', {
    adapter: MapAdapter,
    jwks: { keys: [signingKey] },
    ttl: { ClientCredentials: 600 },
    ...configuration,
    features: {
      devInteractions: { enabled: false },
      ...configuration.features,
      // Tally's introspection rule: the only policy the direct answer reproduces.
      introspection: { allowedPolicy: introspectionAllowedPolicy, ...configuration.features?.introspection } as never,
    },
  });
  // What beside oidc-provider judges its tokens asks the ledger manager; here, its rule over this provider's grants.
  const Grant = provider.Grant as unknown as {
    find(id: string, options: object): Promise<{ clientId?: string; accountId?: string; exp?: number } | undefined>;
  };
  attachLedger(provider, {
    findActive: async (query: { found: Parameters<typeof judgeFoundToken>[0] }) =>
      judgeFoundToken(query.found, (id) => Grant.find(id, { ignoreExpiration: true })),
  } as unknown as LedgerManager);
  const metrics = createMetrics({ caches: {}, pool: () => undefined });
  // The comparison as the client store makes it, against the stored value of the provider's client.
  const Client = provider.Client as unknown as { find(id: string): Promise<{ clientSecret?: string } | undefined> };
  const secrets: ClientSecrets = createClientSecrets({
    verifySecret: async (id, secret, options) =>
      (await compareClientSecret(new Map([[secretKey.id, secretKey.key]]), (await Client.find(id))?.clientSecret, secret, options)).match,
  });
  const warnings: unknown[] = [];
  const errors: unknown[] = [];
  const logger = { warn: (...args: unknown[]) => void warnings.push(args), error: (...args: unknown[]) => void errors.push(args) } as unknown as Parameters<
    typeof createDirectAnswers
  >[0]['logger'];
  const answer = createDirectAnswers({ providers: holdProvider(provider), secrets, metrics, events: new EventEmitter(), logger });
  return {
    provider,
    /** What the direct answers logged as warnings (oidc-provider answered instead) and as errors (a failure after a write). */
    warnings,
    errors,
    /** A form post with HTTP Basic credentials (SECRET) and `extraHeaders`, read and parsed as the server does. */
    ask(endpoint: DirectEndpoint, form: Record<string, string>, clientId: string, extraHeaders: Record<string, string> = {}) {
      const path = endpoint === 'token' ? '/token' : '/token/introspection';
      const headers = {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`,
        ...extraHeaders,
      };
      return answer(endpoint, parseProtocolRequest(path, headers, Buffer.from(new URLSearchParams(form).toString())), path);
    },
    async counts(endpoint: DirectEndpoint): Promise<Counts> {
      return countsOf(await metrics.registry.metrics(), endpoint);
    },
  };
}
