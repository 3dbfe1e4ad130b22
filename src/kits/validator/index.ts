import { sha256 } from '../shared/sha256.js';
import { postAsClient } from '../shared/client-post.js';
import { Redis } from 'ioredis';
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { revocationChannel, type RevocationMessage } from '../../protocol/revocations.js';
import { createDiscovery, IssuerUnavailableError, UntrustedEndpointError } from '../shared/discovery.js';
import { deriveEntryKey } from '../shared/entry-keys.js';
import { checkBinding, type BindingRefusal, type Presentation } from './binding.js';
import { createMemoryCache, createRedisCache, type CachedValidation, type ValidationCache } from './cache.js';
import { createMemoryProofReplay, createSharedProofReplay, type ProofReplay } from './proof-replay.js';
import {
  createMemoryRevocationState,
  createRedisRevocationState,
  listenToRedis,
  listenToStream,
  readBacklog,
  tagsOf,
  type RevocationListener,
  type RevocationState,
  type TokenFacts,
} from './revocations.js';

export { IssuerUnavailableError, UntrustedEndpointError };
export { certificateFromHeader, certificateThumbprint, DPOP_ALGORITHMS, type BindingRefusal, type Presentation } from './binding.js';

export interface ValidatorOptions {
  /** The Tally issuer URL. */
  issuer: string;
  /** This resource server's client credentials (it introspects and follows revocations with them). */
  clientId: string;
  clientSecret: string;
  /** Required: the value, or one of the values, a token's `aud` must hold for this API. */
  audience: string | string[];
  /** Longest a result is reused (default 60); never past the token's exp. Revocations still evict at once. */
  cacheTtlSeconds?: number;
  /** Share the cache and receive revocations through this Redis (the server must have REDIS_URL too). */
  redisUrl?: string;
  /** Also check a JWT's ledger status at the server (cached like any result). */
  entryValidation?: boolean;
  /** Origins besides the issuer's that the discovery document's endpoints may be on (none by default). */
  allowedEndpointOrigins?: string[];
  /** How far a DPoP proof's `iat` may lie from now, either way (default 60 s); its `jti` is remembered that long. */
  dpopProofWindowSeconds?: number;
}

export interface ValidatorStats {
  /** Entries read from the shared Redis cache that failed their MAC check (put or altered by another writer), ignored. */
  rejectedCacheEntries: number;
  /** DPoP proofs whose `jti` could not be recorded in Redis (replays then caught by this process only). */
  unsharedProofChecks: number;
}

/** RFC 7662-shaped: `{ active: false }` for any token that is not good, never a throw. */
export interface ValidationResult {
  active: boolean;
  sub?: string;
  client_id?: string;
  scope?: string;
  exp?: number;
  iat?: number;
  aud?: string | string[];
  iss?: string;
  jti?: string;
  token_type?: string;
  grant_id?: string;
  [claim: string]: unknown;
}

/** A validation with, when it is refused for how the token was presented, the reason a challenge names. */
export interface CheckedToken {
  result: ValidationResult;
  refusal?: BindingRefusal;
}

export interface Validator {
  /**
   * The token's validation result, `{ active: false }` when it is not good or not presented as its
   * binding requires: a DPoP-bound token (`cnf.jkt`) needs `presentation.dpop` with a valid proof, a
   * token without `cnf.jkt` must come without one, a certificate-bound token (`cnf["x5t#S256"]`) needs
   * `presentation.certificate`. `validate(token)` alone accepts unbound tokens only.
   */
  validate(token: string, presentation?: Presentation): Promise<ValidationResult>;
  /** As `validate`, with the reason a refused presentation gets (`invalid_token` or `invalid_dpop_proof`). */
  check(token: string, presentation?: Presentation): Promise<CheckedToken>;
  /**
   * Resolves once the issuer's discovery document is read and its endpoints trusted; rejects with an
   * UntrustedEndpointError naming an endpoint outside the issuer's origin (until then, and while that
   * lasts, `validate` answers `{ active: false }`), or an IssuerUnavailableError.
   */
  ready(): Promise<void>;
  stats(): ValidatorStats;
  close(): Promise<void>;
}

const INACTIVE: ValidationResult = Object.freeze({ active: false });
/** Inactive results are remembered briefly, to absorb retries of a bad token. */
const NEGATIVE_TTL_MS = 5_000;
/** Without a live revocation feed, a cached result is trusted this long at most. */
const UNWATCHED_TRUST_MS = 2_000;
const JWT_ALGORITHMS = ['ES256', 'RS256', 'PS256', 'EdDSA'];

function wellFormed(token: unknown): token is string {
  return typeof token === 'string' && token.length > 0 && token.length <= 8192 && /^[\x21-\x7E]+$/.test(token);
}

/** The audiences this validator accepts; a TypeError naming `audience` when there is none. */
function audiencesOf(audience: unknown): string[] {
  const list = Array.isArray(audience) ? audience : [audience];
  if (list.length === 0 || !list.every((a) => typeof a === 'string' && a.length > 0))
    throw new TypeError('createValidator: `audience` is required: the value, or a non-empty list of values, that tokens for this API carry in `aud`');
  return list as string[];
}

/** Access tokens only (an introspection answer's token_type): a refresh token has none. */
const ACCESS_TOKEN_TYPES = new Set(['bearer', 'dpop']);

function tagsFor(result: ValidationResult, jtiHash: string | undefined): string[] {
  return [
    ...(jtiHash ? [`jti:${jtiHash}`] : []),
    ...(typeof result.sub === 'string' ? [`sub:${result.sub}`] : []),
    ...(typeof result.client_id === 'string' ? [`client:${result.client_id}`] : []),
    ...(typeof result.grant_id === 'string' ? [`grant:${result.grant_id}`] : []),
  ];
}

/** What a revocation may name of a token, from its validation result. */
function factsOf(result: ValidationResult, jtiHash: string | undefined): TokenFacts {
  return {
    jtiHash,
    subject: typeof result.sub === 'string' ? result.sub : undefined,
    clientId: typeof result.client_id === 'string' ? result.client_id : undefined,
    grantId: typeof result.grant_id === 'string' ? result.grant_id : undefined,
    iat: typeof result.iat === 'number' ? result.iat : undefined,
  };
}

export function createValidator(options: ValidatorOptions): Validator {
  const audiences = audiencesOf(options.audience);
  const issuer = options.issuer.replace(/\/$/, '');
  const cacheTtlMs = (options.cacheTtlSeconds ?? 60) * 1000;
  const discover = createDiscovery(issuer, { allowedEndpointOrigins: options.allowedEndpointOrigins });
  // Revocations are facts about the issuer, shared by all its validators; a result depends on who
  // asks and what it checks too (audience, entry validation), so results are shared only among equals.
  const prefix = `tally:validator:${sha256(issuer)}:`;
  const resultPrefix = `${prefix}${sha256(JSON.stringify([options.clientId, [...audiences].sort(), options.entryValidation === true]))}:`;

  const redis = options.redisUrl ? new Redis(options.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000, enableOfflineQueue: false }) : undefined;
  redis?.on('error', () => undefined);
  const memory = createMemoryCache();
  const stats: ValidatorStats = { rejectedCacheEntries: 0, unsharedProofChecks: 0 };
  const shared: ValidationCache | undefined =
    redis &&
    createRedisCache(redis, resultPrefix, deriveEntryKey(options.clientSecret, resultPrefix, 'tally validator cache'), () => stats.rejectedCacheEntries++);
  const memoryReplay = createMemoryProofReplay();
  const replay: ProofReplay = redis ? createSharedProofReplay(redis, prefix, memoryReplay, () => stats.unsharedProofChecks++) : memoryReplay;
  const dpopWindowSeconds = options.dpopProofWindowSeconds ?? 60;
  const memoryState = createMemoryRevocationState();
  const sharedState: RevocationState | undefined = redis && createRedisRevocationState(redis, prefix);

  // Counts revocations heard: one heard while a result was being worked out evicted nothing of it.
  let revocationsHeard = 0;

  async function onRevocation(message: RevocationMessage) {
    revocationsHeard++;
    const tags = tagsOf(message);
    await memoryState.record(message);
    await memory.evict(tags);
    await Promise.all([sharedState?.record(message), shared?.evict(tags)]).catch(() => undefined);
  }

  const credentials = { issuer, clientId: options.clientId, clientSecret: options.clientSecret };
  const listener: RevocationListener = redis
    ? listenToRedis(new Redis(options.redisUrl!, { connectTimeout: 2000 }), revocationChannel(issuer), onRevocation, (afterId) =>
        readBacklog({ ...credentials, afterId, onMessage: onRevocation }),
      )
    : listenToStream({ ...credentials, onMessage: onRevocation });

  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  async function keySet() {
    // jose refetches on an unknown kid, at most once per cooldown.
    jwks ??= createRemoteJWKSet(new URL((await discover()).jwks_uri), { cooldownDuration: 5_000, cacheMaxAge: 10 * 60_000, timeoutDuration: 5_000 });
    return jwks;
  }

  async function introspect(token: string): Promise<ValidationResult> {
    const { introspection_endpoint: endpoint } = await discover();
    if (!endpoint) throw new IssuerUnavailableError('the issuer offers no introspection endpoint');
    const response = await postAsClient(endpoint, options, new URLSearchParams({ token }), { what: 'introspection', timeoutMs: 5_000 });
    if (!response.ok) throw new IssuerUnavailableError(`introspection answered ${response.status}`);
    const result = (await response.json()) as ValidationResult;
    if (result.active !== true) return INACTIVE;
    // Only access tokens: a refresh token of the validator's own client introspects active too.
    if (typeof result.token_type !== 'string' || !ACCESS_TOKEN_TYPES.has(result.token_type.toLowerCase())) return INACTIVE;
    const aud = Array.isArray(result.aud) ? result.aud : [result.aud];
    if (!aud.some((a) => typeof a === 'string' && audiences.includes(a))) return INACTIVE;
    return result;
  }

  async function verifyJwt(token: string): Promise<{ result: ValidationResult; jtiHash?: string }> {
    let payload: JWTPayload;
    try {
      payload = (
        await jwtVerify(token, await keySet(), {
          issuer,
          typ: 'at+jwt',
          algorithms: JWT_ALGORITHMS,
          audience: audiences,
        })
      ).payload;
    } catch (error) {
      if (error instanceof IssuerUnavailableError || error instanceof joseErrors.JWKSTimeout || (error instanceof TypeError && /fetch/i.test(error.message))) {
        throw new IssuerUnavailableError(`JWKS unavailable: ${(error as Error).message}`);
      }
      return { result: INACTIVE };
    }
    if (typeof payload.jti !== 'string' || typeof payload.client_id !== 'string') return { result: INACTIVE };
    const jtiHash = sha256(payload.jti);
    const facts = {
      jtiHash,
      subject: payload.sub,
      clientId: payload.client_id,
      grantId: typeof payload.grant_id === 'string' ? payload.grant_id : undefined,
      iat: payload.iat,
    };
    const revoked = (await memoryState.isRevoked(facts)) || (await sharedState?.isRevoked(facts).catch(() => false));
    if (revoked) return { result: INACTIVE, jtiHash };
    // Without a live feed this validator would not hear of a revocation: ask the ledger instead.
    if (options.entryValidation || !listener.healthy()) {
      const status = await introspect(token);
      if (!status.active) return { result: INACTIVE, jtiHash };
    }
    const bound = typeof (payload.cnf as { jkt?: unknown } | undefined)?.jkt === 'string';
    // Object.assign, not a spread followed by fields: on Node 20 that literal gets a hidden class of its
    // own on every call (src/lib/object-shapes.ts), a runtime call per field.
    const result: ValidationResult = Object.assign({}, payload as ValidationResult, { active: true, token_type: bound ? 'DPoP' : 'Bearer' } as const);
    return { result, jtiHash };
  }

  async function cached(key: string): Promise<CachedValidation | undefined> {
    const hit = (await memory.get(key)) ?? (await shared?.get(key).catch(() => undefined));
    if (!hit) return undefined;
    if (!listener.healthy() && Date.now() - hit.storedAt > UNWATCHED_TRUST_MS) return undefined;
    const exp = hit.result.exp;
    if (typeof exp === 'number' && exp * 1000 <= Date.now()) return undefined;
    return hit;
  }

  async function validate(token: string): Promise<ValidationResult> {
    if (!wellFormed(token)) return INACTIVE;
    const key = sha256(token);
    const hit = await cached(key);
    if (hit) {
      // What this process heard is checked too: an authentic entry saved before a revocation and
      // written back after it (or one whose eviction was missed) is still refused.
      const jtiHash = hit.tags.find((tag) => tag.startsWith('jti:'))?.slice(4);
      if (hit.result.active && (await memoryState.isRevoked(factsOf(hit.result, jtiHash)))) return INACTIVE;
      return hit.result;
    }

    let computed: { result: ValidationResult; jtiHash?: string | undefined };
    const heardBefore = revocationsHeard;
    try {
      let isJwt = false;
      if (token.split('.').length === 3) {
        try {
          isJwt = decodeProtectedHeader(token).alg !== undefined;
        } catch {
          return INACTIVE;
        }
      }
      // A reference token's jti is the token itself.
      computed = isJwt ? await verifyJwt(token) : { result: await introspect(token), jtiHash: key };
    } catch (error) {
      if (error instanceof IssuerUnavailableError) return INACTIVE; // fail closed, and remember nothing
      throw error;
    }

    const { result, jtiHash } = computed;
    // A revocation heard meanwhile may name this token (an introspection answered just before it, a
    // JWT checked just before it was recorded): the result is judged again by what was heard.
    if (result.active && revocationsHeard !== heardBefore && (await memoryState.isRevoked(factsOf(result, jtiHash)))) return INACTIVE;
    const ttl = result.active ? Math.min(cacheTtlMs, typeof result.exp === 'number' ? result.exp * 1000 - Date.now() : cacheTtlMs) : NEGATIVE_TTL_MS;
    if (ttl > 0) {
      const entry: CachedValidation = { result, storedAt: Date.now(), tags: tagsFor(result, jtiHash) };
      await memory.set(key, entry, ttl);
      await shared?.set(key, entry, ttl).catch(() => undefined);
    }
    return result;
  }

  // Concurrent validations of one token share one computation (one introspection, one verify).
  const pending = new Map<string, Promise<ValidationResult>>();

  function validateShared(token: string): Promise<ValidationResult> {
    let running = pending.get(token);
    if (!running) {
      running = validate(token)
        .catch(() => INACTIVE)
        .finally(() => pending.delete(token));
      pending.set(token, running);
    }
    return running;
  }

  // The binding is checked per request, on the result (cached or not), which holds the token's `cnf`.
  async function check(token: string, presentation: Presentation = {}): Promise<CheckedToken> {
    if (!wellFormed(token)) return { result: INACTIVE };
    const result = await validateShared(token);
    if (!result.active) return { result };
    const refusal = await checkBinding(result, token, presentation, { windowSeconds: dpopWindowSeconds, replay }).catch(
      (): BindingRefusal => ({ error: 'invalid_token', description: 'the token binding could not be checked' }),
    );
    return refusal ? { result: INACTIVE, refusal } : { result };
  }

  return {
    async validate(token: string, presentation?: Presentation) {
      return (await check(token, presentation)).result;
    },
    check,
    async ready() {
      await discover();
    },
    stats: () => ({ ...stats }),
    async close() {
      await listener.close();
      await memory.close();
      redis?.disconnect();
    },
  };
}

export { requireToken, type RequireTokenOptions } from './require-token.js';
