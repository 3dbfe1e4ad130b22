import proxyaddr from 'proxy-addr';
import { z } from 'zod';
import { TOKEN_MODES, type TokenMode } from '../lib/enums.js';
import { TallyError } from '../lib/errors.js';
import { readTlsFiles, type TlsFiles } from './tls.js';

export type { TokenMode };

/** Thrown for a bad environment value; the message names the variable, for the operator to see. */
export class ConfigError extends TallyError {
  constructor(message: string) {
    super(500, 'invalid_configuration', message, { expose: true });
  }
}

const positiveInt = z.coerce.number().int().positive();

// Every variable Tally reads, with its documented default. This module is the only reader of process.env.
const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  ISSUER: z.url({ protocol: /^https?$/ }).optional(),
  DATABASE_URL: z
    .string()
    .regex(/^(file:|postgres:\/\/|postgresql:\/\/)/, 'must start with file:, postgres:// or postgresql://')
    .default('file:./data/tally.db'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  TOKEN_MODE: z.enum(TOKEN_MODES).default('reference'),
  ACCESS_TOKEN_TTL: positiveInt.default(3600),
  REFRESH_TOKEN_TTL: positiveInt.default(1209600),
  DEFAULT_AUDIENCE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds during which a rotated refresh token may be presented again without revoking its grant. */
  REFRESH_TOKEN_REUSE_LEEWAY: z.coerce.number().int().min(0).default(0),
  /**
   * Optional base64url 32-byte key that wraps every stored key; without it a generated one is kept in
   * the database. To change it, a comma-separated list: the first seals, every one opens (`new,old`).
   */
  TALLY_SECRET_KEY: z
    .string()
    .transform((v) => v.split(',').map((part) => part.trim()))
    .refine(
      (list) => list.every((key) => Buffer.from(key, 'base64url').length === 32),
      'must be 32 bytes, base64url-encoded (to change keys: the new one, a comma, the old one)',
    )
    .optional(),
  DATABASE_POOL_SIZE: positiveInt.default(10),
  /** Seconds a new signing key is published before it is used, so that every replica has it first. */
  KEY_ACTIVATION_DELAY: z.coerce.number().int().min(0).default(60),
  /** Seconds between checks for new, activated or retired signing keys. */
  KEY_RELOAD_INTERVAL: positiveInt.default(30),
  /** Peers whose X-Forwarded-* headers are believed: `loopback`, or IP addresses and CIDR ranges, comma-separated. */
  TRUST_PROXY: z
    .string()
    .transform((v) => v.split(',').map((part) => part.trim()))
    .refine((list) => list.every(Boolean) && compiles(list), 'must be loopback, or IP addresses and CIDR ranges separated by commas')
    .optional(),
  /** With TLS_KEY_FILE: PORT serves HTTPS with this PEM certificate (chain), read once at start. */
  TLS_CERT_FILE: z.string().optional(),
  /** The PEM private key of TLS_CERT_FILE. */
  TLS_KEY_FILE: z.string().optional(),
  /** PEM CAs whose client certificates the HTTPS listener asks for (mutual TLS, RFC 8705). */
  TLS_CLIENT_CA_FILE: z.string().optional(),
  /** `true`: every client must push its authorization request first (RFC 9126). */
  REQUIRE_PAR: z.stringbool({ truthy: ['true'], falsy: ['false'] }).default(false),
  /** Days an audit event is kept; prune deletes older ones. */
  AUDIT_RETENTION_DAYS: positiveInt.default(90),
  /**
   * `true`: DPoP proofs must carry a server nonce (RFC 9449 §8); a proof without one is answered
   * `use_dpop_nonce` with a `DPoP-Nonce` header. The nonce secret is kept sealed in the keys table, so
   * a nonce one replica gives works on every other.
   */
  DPOP_NONCES: z.enum(['true', 'false']).default('false'),
  /** `production` makes TALLY_SECRET_KEY required. */
  NODE_ENV: z.string().optional(),
});

/** Whether proxy-addr (Express's own reader of trusted hops) takes the list. */
function compiles(list: string[]): boolean {
  try {
    proxyaddr.compile(list);
    return true;
  } catch {
    return false;
  }
}

/** The names of every environment variable Tally reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

export interface Config {
  port: number;
  host: string;
  issuer: string;
  databaseUrl: string;
  redisUrl: string | undefined;
  adminApiKey: string | undefined;
  tokenMode: TokenMode;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  defaultAudience: string;
  logLevel: string;
  refreshTokenReuseLeeway: number;
  /** TALLY_SECRET_KEY's root keys, the one that seals first; empty: the root key kept in the database. */
  secretKeys: Buffer[];
  databasePoolSize: number;
  keyActivationDelay: number;
  keyReloadInterval: number;
  /** Trusted proxies (proxy-addr's terms); empty: none, the socket's peer is the client. */
  trustProxy: string[];
  auditRetentionDays: number;
  /** DPOP_NONCES=true: DPoP proofs need a server nonce. */
  dpopNonces: boolean;
  /** The HTTPS listener's files (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE); absent: plain HTTP. */
  tls: TlsFiles | undefined;
  /** REQUIRE_PAR: authorization requests only through the pushed authorization request endpoint. */
  requirePar: boolean;
  /** NODE_ENV=production: refuses to start without TALLY_SECRET_KEY. */
  production: boolean;
}

/** Said at every start without TALLY_SECRET_KEY (by the server through its logger, by the CLI on stderr). */
export const NO_SECRET_KEY_WARNING =
  'TALLY_SECRET_KEY is not set: the root key that seals every stored key is kept in the database, beside what it seals; set TALLY_SECRET_KEY (the next start seals them again under it; required with NODE_ENV=production)';

/** Reads and validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input = Object.fromEntries(Object.keys(schema.shape).flatMap((k) => (env[k] === undefined || env[k] === '' ? [] : [[k, env[k]]])));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    throw new ConfigError(`Invalid environment variable ${name}=${JSON.stringify(env[name])}: ${issue.message}`);
  }
  const v = parsed.data;
  if (v.NODE_ENV === 'production' && !v.TALLY_SECRET_KEY) {
    throw new ConfigError(
      'TALLY_SECRET_KEY is required with NODE_ENV=production: set it to 32 random bytes, base64url (the root key that seals every stored key)',
    );
  }
  const tls = readTlsFiles({ cert: v.TLS_CERT_FILE, key: v.TLS_KEY_FILE, ca: v.TLS_CLIENT_CA_FILE }, (name, file, why) => {
    throw new ConfigError(`Invalid environment variable ${name}${file ? `=${JSON.stringify(file)}` : ''}: ${why}`);
  });
  const issuer = (v.ISSUER ?? `${tls ? 'https' : 'http'}://localhost:${v.PORT}`).replace(/\/$/, '');
  return {
    port: v.PORT,
    host: v.HOST,
    issuer,
    databaseUrl: v.DATABASE_URL,
    redisUrl: v.REDIS_URL,
    adminApiKey: v.ADMIN_API_KEY,
    tokenMode: v.TOKEN_MODE,
    accessTokenTtl: v.ACCESS_TOKEN_TTL,
    refreshTokenTtl: v.REFRESH_TOKEN_TTL,
    defaultAudience: v.DEFAULT_AUDIENCE ?? issuer,
    logLevel: v.LOG_LEVEL,
    refreshTokenReuseLeeway: v.REFRESH_TOKEN_REUSE_LEEWAY,
    secretKeys: (v.TALLY_SECRET_KEY ?? []).map((key) => Buffer.from(key, 'base64url')),
    databasePoolSize: v.DATABASE_POOL_SIZE,
    keyActivationDelay: v.KEY_ACTIVATION_DELAY,
    keyReloadInterval: v.KEY_RELOAD_INTERVAL,
    trustProxy: v.TRUST_PROXY ?? [],
    auditRetentionDays: v.AUDIT_RETENTION_DAYS,
    dpopNonces: v.DPOP_NONCES === 'true',
    tls,
    requirePar: v.REQUIRE_PAR,
    production: v.NODE_ENV === 'production',
  };
}
