import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { codeFlow, discover } from '../../test/helpers/oauth.ts';
import { execute } from '../../test/helpers/db.ts';
import { hashSecret } from '../../src/storage/passwords.ts';
import { basic, FORM, postForm, request } from './http.ts';
import { createProofMaker, createProofPool } from './dpop.ts';
import { cannonRun, loopRun, type RunOnce } from './measure.ts';
import { seedPostgresLedger, seedSqliteLedger, type SeedResult } from './seed.ts';
import { createServiceClient, createUser, createWebClient, distDir, introspectionCount, type Client, type TallyServer } from './tally.ts';

export const MODES = ['reference', 'jwt', 'stateless'] as const;
export type Mode = (typeof MODES)[number];

export interface Scenario {
  id: string;
  title: string;
  /** What one operation is. */
  unit: string;
  /** Concurrency levels (connections or workers); default the run's levels. */
  levels?: number[];
  /** Seconds per run when not the run's default (short in-process loops). */
  seconds?: number;
  /** True for POST /token scenarios (the p99 < 25 ms target applies). */
  tokenEndpoint?: boolean;
  /** True when the operation is not one HTTP request of the server (ratios to Express say less). */
  composite?: boolean;
  /** True for custom loops (not autocannon): the steady-load run paces the loop, and Express hello's twin too. */
  loop?: boolean;
  /** Runs once before the warm-up; a string it returns is a note for the report. */
  prepare?: () => Promise<unknown>;
  run: RunOnce;
  /** After the runs: a note for the report (e.g. how many introspections a validator made). */
  after?: () => Promise<string | undefined>;
}

export interface Fixtures {
  server: TallyServer;
  service: Record<Mode, Client>;
  web: Record<Mode, Client>;
  /** The resource server: introspects with its own credentials, and backs the validator kit. */
  resourceServer: Client;
  user: { id: string; username: string; password: string };
  hot: Record<Mode, string>;
}

async function clientCredentialsToken(server: TallyServer, client: Client): Promise<string> {
  const body = await postForm<{ access_token: string }>(
    `${server.url}/token`,
    { grant_type: 'client_credentials', scope: 'api:read' },
    basic(client.client_id, client.client_secret),
  );
  return body.access_token;
}

async function inParallel<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

export async function createFixtures(server: TallyServer): Promise<Fixtures> {
  const service = {} as Record<Mode, Client>;
  const web = {} as Record<Mode, Client>;
  for (const mode of MODES) {
    service[mode] = await createServiceClient(server, mode);
    web[mode] = await createWebClient(server, mode);
  }
  // It introspects the other clients' tokens of the default audience (the issuer).
  const resourceServer = await createServiceClient(server, 'reference', 'bench resource server', { introspection_audiences: [server.url] });
  const user = await createUser(server, `bench-${randomBytes(4).toString('hex')}`, `pw-${randomBytes(12).toString('base64url')}`);
  const hot = {} as Record<Mode, string>;
  for (const mode of MODES) hot[mode] = await clientCredentialsToken(server, service[mode]);
  return { server, service, web, resourceServer, user, hot };
}

export interface ScenarioOptions {
  dialect: 'sqlite' | 'postgresql';
  ledger: { target: number; fallback: number; budgetS: number; probeRows: number };
  /** Real tokens per mode to pick random ones from. */
  poolSize: number;
  /** Records how the ledger was seeded (once per server). */
  onSeed: (result: SeedResult & { total: number }) => void;
  log: (line: string) => void;
}

/** Every scenario against one Tally server. */
export function tallyScenarios(fx: Fixtures, options: ScenarioOptions): Scenario[] {
  const { server } = fx;
  const introspectionAuth = basic(fx.resourceServer.client_id, fx.resourceServer.client_secret);
  const scenarios: Scenario[] = [];

  scenarios.push({
    id: 'discovery',
    title: 'Discovery document (GET /.well-known/openid-configuration)',
    unit: 'req/s',
    prepare: async () => {
      const answer = await request(`${server.url}/.well-known/openid-configuration`);
      if (answer.status !== 200 || !JSON.parse(answer.body).token_endpoint) throw new Error(`discovery answered ${answer.status}`);
    },
    run: cannonRun({ url: `${server.url}/.well-known/openid-configuration` }),
  });

  for (const mode of MODES) {
    const client = fx.service[mode];
    scenarios.push({
      id: `cc-${mode}`,
      title: `Client credentials, ${mode} mode (POST /token, client_secret_basic)`,
      unit: 'tokens/s',
      tokenEndpoint: true,
      prepare: async () => {
        await clientCredentialsToken(server, client);
      },
      run: cannonRun({
        url: `${server.url}/token`,
        method: 'POST',
        headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': FORM, accept: 'application/json' },
        body: 'grant_type=client_credentials&scope=api%3Aread',
      }),
    });
  }

  // The same grant with a DPoP proof per request (RFC 9449): the token is bound to the load
  // generator's key. The goal is at least 0.7x plain client credentials in CPU cost.
  for (const mode of MODES) {
    const client = fx.service[mode];
    const dpop = createProofMaker();
    const tokenUrl = `${server.url}/token`;
    const proofs = createProofPool(dpop, 'POST', tokenUrl);
    scenarios.push({
      id: `cc-dpop-${mode}`,
      title: `Client credentials with DPoP, ${mode} mode (POST /token, client_secret_basic, a fresh proof per request, signed before the run)`,
      unit: 'tokens/s',
      tokenEndpoint: true,
      prepare: async () => {
        const answer = await request(tokenUrl, {
          method: 'POST',
          headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': FORM, dpop: dpop.proof('POST', tokenUrl) },
          body: 'grant_type=client_credentials&scope=api%3Aread',
        });
        const body = JSON.parse(answer.body) as { token_type?: string };
        if (answer.status !== 200 || body.token_type !== 'DPoP') throw new Error(`a DPoP token request answered ${answer.status}: ${answer.body}`);
      },
      run: cannonRun({
        url: tokenUrl,
        method: 'POST',
        headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': FORM, accept: 'application/json' },
        body: 'grant_type=client_credentials&scope=api%3Aread',
        headersFor: () => ({ dpop: proofs.take() }),
        // Enough for 5,000 requests a second, above any plain client-credentials run here.
        beforeRun: (seconds) => proofs.fill(Math.ceil(seconds * 5_000)),
      }),
    });
  }

  const checkActive = async (token: string) => {
    const body = await postForm<{ active: boolean }>(`${server.url}/token/introspection`, { token }, introspectionAuth);
    if (body.active !== true) throw new Error(`introspection of a fresh token answered ${JSON.stringify(body)}`);
  };

  for (const mode of MODES) {
    scenarios.push({
      id: `introspect-hot-${mode}`,
      title: `Introspection of one ${mode}-mode access token, over and over (POST /token/introspection)`,
      unit: 'req/s',
      prepare: () => checkActive(fx.hot[mode]),
      run: cannonRun({
        url: `${server.url}/token/introspection`,
        method: 'POST',
        headers: { authorization: introspectionAuth, 'content-type': FORM, accept: 'application/json' },
        body: `token=${encodeURIComponent(fx.hot[mode])}`,
      }),
    });
  }

  // Random tokens from a big ledger: filler rows make the table big, real tokens are looked up.
  let seeded: Promise<void> | undefined;
  const pools = {} as Record<Mode, string[]>;
  const seedOnce = () =>
    (seeded ??= (async () => {
      const result =
        options.dialect === 'sqlite' ? seedSqliteLedger(server.dbFile!, options.ledger) : await seedPostgresLedger(server.databaseUrl, options.ledger.target);
      const total = await countEntries(server, options.dialect);
      options.onSeed({ ...result, total });
      options.log(
        `  ledger: ${result.rows.toLocaleString('en-US')} filler rows in ${result.seconds.toFixed(1)} s (${total.toLocaleString('en-US')} entries now)${result.note ? `; ${result.note}` : ''}`,
      );
    })());
  // The reference pool is the one the target is about; the others are half as big (issuing takes time).
  const poolFor = (mode: Mode) => (mode === 'reference' ? options.poolSize : Math.ceil(options.poolSize / 2));
  for (const mode of MODES) {
    const pick = () => {
      const pool = pools[mode];
      return `token=${encodeURIComponent(pool[Math.floor(Math.random() * pool.length)]!)}`;
    };
    scenarios.push({
      id: `introspect-random-${mode}`,
      title: `Introspection of random ${mode}-mode access tokens (${poolFor(mode).toLocaleString('en-US')} real ones) in a big ledger`,
      unit: 'req/s',
      prepare: async () => {
        await seedOnce();
        const started = Date.now();
        pools[mode] = await inParallel(poolFor(mode), 8, () => clientCredentialsToken(server, fx.service[mode]));
        for (const token of pools[mode].slice(0, 5)) await checkActive(token);
        return `pool of ${poolFor(mode).toLocaleString('en-US')} tokens issued in ${((Date.now() - started) / 1000).toFixed(1)} s`;
      },
      run: cannonRun({
        url: `${server.url}/token/introspection`,
        method: 'POST',
        headers: { authorization: introspectionAuth, 'content-type': FORM, accept: 'application/json' },
        bodyFor: pick,
      }),
    });
  }

  // Refresh rotation: each worker chains its own refresh tokens (every use rotates).
  for (const mode of MODES) {
    const client = fx.web[mode];
    const auth = basic(client.client_id, client.client_secret);
    const chains: string[] = [];
    let config: Awaited<ReturnType<typeof discover>> | undefined;
    const newChain = async (worker: number) => {
      config ??= await discover({ url: server.url } as never, client as never);
      const tokens = await codeFlow(config, fx.user);
      if (!tokens.refresh_token) throw new Error('the code flow returned no refresh token');
      chains[worker] = tokens.refresh_token;
    };
    scenarios.push({
      id: `refresh-${mode}`,
      title: `Refresh-token rotation, ${mode} mode (POST /token grant_type=refresh_token; each worker chains its own tokens)`,
      unit: 'refreshes/s',
      tokenEndpoint: true,
      loop: true,
      prepare: async () => {
        const started = Date.now();
        await inParallel(50, 5, (w) => newChain(w));
        return `50 initial refresh tokens through the code flow in ${((Date.now() - started) / 1000).toFixed(1)} s`;
      },
      run: loopRun(
        async (worker) => {
          const body = await postForm<{ refresh_token?: string }>(`${server.url}/token`, { grant_type: 'refresh_token', refresh_token: chains[worker]! }, auth);
          if (!body.refresh_token) throw new Error('no rotated refresh token');
          chains[worker] = body.refresh_token;
        },
        (worker) => newChain(worker),
      ),
    });
  }

  {
    const client = fx.web.reference;
    let config: Awaited<ReturnType<typeof discover>> | undefined;
    scenarios.push({
      id: 'code-flow',
      title: 'Full authorization code + PKCE flow with a login and consent (authorize, login page, login POST, consent, token)',
      unit: 'flows/s',
      composite: true,
      prepare: async () => {
        config = await discover({ url: server.url } as never, client as never);
      },
      run: loopRun(async () => {
        const tokens = await codeFlow(config!, fx.user);
        if (!tokens.access_token) throw new Error('no access token');
      }),
    });
  }

  {
    // A login while 200 connections send wrong secrets for a client whose secret is still a legacy
    // argon2 hash (HMAC secrets cost no argon2 at all), each one a second after its last answer: up to
    // 200 argon2 verifications a second offered, several times what the cores can hash. Client
    // authentication's argon2 work has its own small bound and the rest is refused at once (503), so
    // the login's own queue stays free. (A flood that sends again at once only measures how many
    // cheap requests the CPU can answer.)
    const client = fx.web.reference;
    let config: Awaited<ReturnType<typeof discover>> | undefined;
    let flooded = '';
    const floodAnswers = { refused: 0, failed: 0, other: 0 };
    scenarios.push({
      id: 'login-during-flood',
      title: 'Full authorization code + PKCE flow with a login, during a flood of wrong client secrets (200 connections, each 1/s, legacy argon2 secret)',
      unit: 'flows/s',
      levels: [1],
      composite: true,
      prepare: async () => {
        config = await discover({ url: server.url } as never, client as never);
        const legacy = await createServiceClient(server, 'reference', 'bench legacy secret');
        await execute(server, `UPDATE "clients" SET "secret_hash" = ? WHERE "id" = ?`, await hashSecret(legacy.client_secret), legacy.client_id);
        flooded = basic(legacy.client_id, 'a-wrong-secret');
        return undefined;
      },
      run: async (workers, seconds) => {
        let flooding = true;
        const flood = Promise.all(
          Array.from({ length: 200 }, async () => {
            while (flooding) {
              const status = await request(`${server.url}/token`, {
                method: 'POST',
                headers: { authorization: flooded, 'content-type': FORM },
                body: 'grant_type=client_credentials',
              }).then(
                (answer) => answer.status,
                () => 0,
              );
              if (status === 503) floodAnswers.refused++;
              else if (status === 401) floodAnswers.failed++;
              else floodAnswers.other++;
              await new Promise((r) => setTimeout(r, 1000));
            }
          }),
        );
        try {
          return await loopRun(async () => {
            const tokens = await codeFlow(config!, fx.user);
            if (!tokens.access_token) throw new Error('no access token');
          })(workers, seconds);
        } finally {
          flooding = false;
          await flood;
        }
      },
      after: async () =>
        `flood answers: ${floodAnswers.refused.toLocaleString('en-US')} refused at once (503), ${floodAnswers.failed.toLocaleString('en-US')} checked and refused (401), ${floodAnswers.other} other`,
    });
  }

  for (const mode of MODES) {
    const client = fx.service[mode];
    const auth = basic(client.client_id, client.client_secret);
    scenarios.push({
      id: `revoke-${mode}`,
      title: `Revocation, ${mode} mode: issue a client-credentials token, then revoke it (POST /token, POST /token/revocation)`,
      unit: 'issue+revoke/s',
      composite: true,
      run: loopRun(async () => {
        const token = await clientCredentialsToken(server, client);
        const answer = await request(`${server.url}/token/revocation`, {
          method: 'POST',
          headers: { authorization: auth, 'content-type': FORM },
          body: `token=${encodeURIComponent(token)}&token_type_hint=access_token`,
        });
        if (answer.status !== 200) throw new Error(`revocation answered ${answer.status}: ${answer.body}`);
      }),
    });
  }

  for (const mode of ['reference', 'jwt'] as const) {
    let validator: { validate(token: string): Promise<{ active: boolean }>; close(): Promise<void> } | undefined;
    let before = 0;
    let validations = 0;
    scenarios.push({
      id: `validator-${mode}`,
      title: `Validator kit (tally/validator) with a warm cache, one ${mode}-mode token, in-process`,
      unit: 'validations/s',
      levels: [1],
      seconds: 2,
      composite: true,
      prepare: async () => {
        const { createValidator } = (await import(pathToFileURL(join(distDir, 'kits/validator/index.js')).href)) as {
          createValidator(o: object): NonNullable<typeof validator>;
        };
        validator = createValidator({
          issuer: server.url,
          audience: server.url,
          clientId: fx.resourceServer.client_id,
          clientSecret: fx.resourceServer.client_secret,
        });
        // Let the revocation feed connect (without it, cached results are trusted for 2 s only).
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline) {
          if ((await validator.validate(fx.hot[mode])).active !== true) throw new Error('the validator found the token inactive');
          await new Promise((r) => setTimeout(r, 100));
        }
        before = await introspectionCount(server);
      },
      run: async (workers, seconds) => {
        const result = await loopRun(async () => {
          if ((await validator!.validate(fx.hot[mode])).active !== true) throw new Error('inactive');
        })(workers, seconds);
        validations += result.ok;
        return result;
      },
      after: async () => {
        const introspections = (await introspectionCount(server)) - before;
        await validator?.close();
        return `${introspections} introspection request(s) reached the server during ${validations.toLocaleString('en-US')} validations (warm-up excluded)`;
      },
    });
  }

  // The validator with DPoP: each validation brings a fresh proof (RFC 9449), checked in full (signature
  // with the proof's key, htm, htu, iat, ath, the key against cnf.jkt, the jti once). The proofs are
  // signed in the same process, so the figure includes the client's signing: prepare measures that alone.
  for (const mode of ['reference', 'jwt'] as const) {
    type Presented = { dpop: { proof: string; method: string; url: string } };
    let validator: { validate(token: string, presentation?: Presented): Promise<{ active: boolean }>; close(): Promise<void> } | undefined;
    const dpop = createProofMaker();
    const apiUrl = 'https://api.example/resource';
    let token = '';
    const presented = (): Presented => ({ dpop: { proof: dpop.proof('GET', apiUrl, token), method: 'GET', url: apiUrl } });
    scenarios.push({
      id: `validator-dpop-${mode}`,
      title: `Validator kit with DPoP: one ${mode}-mode DPoP-bound token, a fresh proof per validation (signed in-process), warm cache`,
      unit: 'validations/s',
      levels: [1],
      seconds: 2,
      composite: true,
      prepare: async () => {
        const client = fx.service[mode];
        const tokenUrl = `${server.url}/token`;
        const answer = await request(tokenUrl, {
          method: 'POST',
          headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': FORM, dpop: dpop.proof('POST', tokenUrl) },
          body: 'grant_type=client_credentials&scope=api%3Aread',
        });
        token = (JSON.parse(answer.body) as { access_token: string }).access_token;
        const { createValidator } = (await import(pathToFileURL(join(distDir, 'kits/validator/index.js')).href)) as {
          createValidator(o: object): NonNullable<typeof validator>;
        };
        validator = createValidator({
          issuer: server.url,
          audience: server.url,
          clientId: fx.resourceServer.client_id,
          clientSecret: fx.resourceServer.client_secret,
        });
        if ((await validator.validate(token)).active !== false) throw new Error('the validator took a DPoP-bound token without its proof');
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline) {
          if ((await validator.validate(token, presented())).active !== true) throw new Error('the validator refused a good DPoP proof');
          await new Promise((r) => setTimeout(r, 100));
        }
        const started = performance.now();
        for (let i = 0; i < 2000; i++) presented();
        const signing = (performance.now() - started) / 2000;
        return `signing a proof alone: ${signing.toFixed(3)} ms (${Math.round(1000 / signing).toLocaleString('en-US')}/s), included in every validation here`;
      },
      run: loopRun(async () => {
        if ((await validator!.validate(token, presented())).active !== true) throw new Error('inactive');
      }),
      after: async () => {
        await validator?.close();
        return undefined;
      },
    });
  }

  return scenarios;
}

async function countEntries(server: TallyServer, dialect: 'sqlite' | 'postgresql'): Promise<number> {
  if (dialect === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(server.dbFile!, { readonly: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM token_entries').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  try {
    return Number((await client.query('SELECT COUNT(*) AS n FROM token_entries')).rows[0].n);
  } finally {
    await client.end();
  }
}

/**
 * Every scenario on `server`, its fixtures made, on a small SQLite ledger (20,000 entries): for the
 * investigation tools (a profile, an A/B of two builds, the IC log), not the benchmark.
 */
export async function investigationScenarios(server: TallyServer, log: (line: string) => void = () => undefined): Promise<Scenario[]> {
  const fx = await createFixtures(server);
  return tallyScenarios(fx, {
    dialect: 'sqlite',
    ledger: { target: 20_000, fallback: 20_000, budgetS: 60, probeRows: 20_000 },
    poolSize: 500,
    onSeed: () => undefined,
    log,
  });
}

/** One of `investigationScenarios`, prepared. */
export async function preparedScenario(server: TallyServer, id: string, log: (line: string) => void = () => undefined): Promise<Scenario> {
  const scenario = (await investigationScenarios(server, log)).find((s) => s.id === id);
  if (!scenario) throw new Error(`no scenario ${id}`);
  await scenario.prepare?.();
  return scenario;
}
