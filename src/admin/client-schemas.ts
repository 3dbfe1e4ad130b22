import { z } from 'zod';
import { plainText } from '../lib/text.js';
import { TallyError } from '../lib/errors.js';
import { APPLICATION_TYPES, ASYMMETRIC_SIGNING_ALGS, CLIENT_AUTH_METHODS, GRANT_TYPES, RESPONSE_TYPES, TOKEN_MODES } from '../lib/enums.js';
import { isJsonObject, parseInput } from './input.js';
import { MAX_INTROSPECTION_AUDIENCES } from '../lib/enums.js';

// RFC 7591 client metadata as Tally accepts it, checked before oidc-provider's own validation
// (admin/clients.ts). The descriptions are the OpenAPI document's (admin/json-schemas.ts).

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

const absoluteUri = plainText(2000)
  .refine((v) => URL.canParse(v), 'must be an absolute URI')
  .meta({ format: 'uri' });

/** RFC 6749 §3.1.2 and RFC 8252: absolute, no fragment; https, or http on loopback, or a native app's own scheme. */
const redirectUri = absoluteUri
  .refine((v) => !v.includes('#'), 'must not contain a fragment')
  .meta({ description: 'absolute, no fragment; https, http on a loopback address, or a custom scheme for native apps' });

// RFC 7591 tools send an empty list for what does not apply: an empty list means none. Whether a
// client needs members (redirect URIs for the code flow, say) is oidc-provider's check.
const redirectUris = z.array(redirectUri).max(50).meta({ description: 'an empty list means none' });

const scopeString = z
  .string()
  .max(2000)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, 'must be space-separated scope tokens')
  .meta({ description: 'space-separated scopes the client may be granted' });

const clientFields = {
  client_id: z
    .string()
    .regex(/^[\w.:-]{1,128}$/, 'must be 1 to 128 letters, digits, or . _ : -')
    .meta({ description: 'generated (a UUID) when absent; cannot be changed' }),
  client_name: plainText(200),
  redirect_uris: redirectUris,
  post_logout_redirect_uris: redirectUris,
  grant_types: z.array(z.enum(GRANT_TYPES)).max(GRANT_TYPES.length),
  response_types: z.array(z.enum(RESPONSE_TYPES)).max(RESPONSE_TYPES.length),
  // client_secret_jwt passes here, to be refused with the reason once parsed (admin/clients.ts); the
  // document lists what is accepted in the end.
  token_endpoint_auth_method: z.enum([...CLIENT_AUTH_METHODS, 'client_secret_jwt']).meta({
    enum: [...CLIENT_AUTH_METHODS],
    default: 'client_secret_basic',
    description:
      'client_secret_basic and client_secret_post make a confidential client with a generated secret; tls_client_auth (with one tls_client_auth_* field) and self_signed_tls_client_auth (with `jwks` holding the certificate in `x5c`) authenticate with the TLS client certificate (RFC 8705) and get no secret; client_secret_jwt is refused (secrets are stored hashed)',
  }),
  scope: scopeString,
  token_mode: z.enum(TOKEN_MODES).meta({ description: 'the server default (TOKEN_MODE) when absent' }),
  introspection_audiences: z.array(absoluteUri).max(MAX_INTROSPECTION_AUDIENCES).meta({
    description:
      "audiences (`aud` values, e.g. an API's URI, or the issuer for the default audience) of other clients' access tokens this client may introspect; none when absent or empty",
  }),
  require_pkce: z.boolean().meta({ default: true, description: 'false lets a confidential client use the code flow without PKCE; refused for public clients' }),
  dpop_bound_access_tokens: z.boolean().meta({
    default: false,
    description: 'true: every token request must carry a DPoP proof (RFC 9449 §5.2), and the tokens are bound to its key',
  }),
  require_mfa: z
    .boolean()
    .meta({ default: false, description: 'true: its users sign in with a second factor (ID token acr urn:tally:acr:mfa); one without is led to enrol one' }),
  application_type: z.enum(APPLICATION_TYPES).meta({ default: 'web' }),
  client_uri: absoluteUri,
  logo_uri: absoluteUri,
  policy_uri: absoluteUri,
  tos_uri: absoluteUri,
  jwks_uri: absoluteUri,
  jwks: z.strictObject({ keys: z.array(z.record(z.string(), z.unknown())).max(20) }),
  contacts: z.array(plainText(200)).max(20),
  software_id: plainText(200),
  software_version: plainText(200),
  default_max_age: z.number().int().positive(),
  require_auth_time: z.boolean(),
  id_token_signed_response_alg: z.enum(ASYMMETRIC_SIGNING_ALGS),
  // RFC 8705 §2.1.2: for tls_client_auth, exactly one of these names the expected certificate.
  tls_client_auth_subject_dn: plainText(1000).meta({ description: 'tls_client_auth: the certificate subject DN, RFC 4514 form (`CN=client,O=Example`)' }),
  tls_client_auth_san_dns: plainText(253).meta({ description: 'tls_client_auth: a dNSName SAN entry of the certificate' }),
  tls_client_auth_san_uri: absoluteUri.meta({ description: 'tls_client_auth: a uniformResourceIdentifier SAN entry of the certificate' }),
  tls_client_auth_san_ip: z.union([z.ipv4(), z.ipv6()]).meta({ description: 'tls_client_auth: an iPAddress SAN entry of the certificate' }),
  tls_client_auth_san_email: plainText(320).meta({ description: 'tls_client_auth: an rfc822Name SAN entry of the certificate' }),
  tls_client_certificate_bound_access_tokens: z.boolean().meta({
    default: false,
    description: "RFC 8705 §3: access tokens (and public clients' refresh tokens) bound to the TLS client certificate (`cnf.x5t#S256`)",
  }),
  require_pushed_authorization_requests: z.boolean().meta({
    default: false,
    description: 'RFC 9126: authorization requests only through the pushed authorization request endpoint (always true with REQUIRE_PAR)',
  }),
};

type ClientFields = typeof clientFields;

const optionalFields = Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.optional()])) as {
  [K in keyof ClientFields]: z.ZodOptional<ClientFields[K]>;
};

type RedirectFields = {
  redirect_uris?: string[] | null | undefined;
  post_logout_redirect_uris?: string[] | null | undefined;
  application_type?: string | null | undefined;
};

function checkRedirectSchemes(value: RedirectFields, ctx: z.RefinementCtx) {
  for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    (value[field] ?? []).forEach((uri, index) => {
      if (!URL.canParse(uri)) return;
      const url = new URL(uri);
      const ok =
        url.protocol === 'https:' ||
        (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) ||
        (value.application_type === 'native' && !['http:', 'https:'].includes(url.protocol));
      if (!ok)
        ctx.addIssue({
          code: 'custom',
          path: [field, index],
          message: 'must use https (http only on a loopback address; custom schemes only for native apps)',
        });
    });
  }
}

/**
 * RFC 7591 §2.1: the code response type goes with the authorization_code grant (response_types
 * defaults to code). oidc-provider would add the grant silently; an empty or other list is refused instead.
 */
function checkCodeGrant(value: { grant_types?: string[] | undefined; response_types?: string[] | undefined }, ctx: z.RefinementCtx) {
  const code = (value.response_types ?? ['code']).includes('code');
  if (code && value.grant_types && !value.grant_types.includes('authorization_code')) {
    ctx.addIssue({ code: 'custom', path: ['grant_types'], message: 'must include authorization_code when response_types includes code (its default)' });
  }
}

/** The whole metadata of a client: what POST /admin/clients and `tally clients create` take. */
export const createClientBody = z.strictObject(optionalFields).superRefine(checkRedirectSchemes).superRefine(checkCodeGrant);

/** PATCH: every field optional; null removes it. Schemes are checked on the merged result. */
export const patchClientBody = z
  .strictObject(
    Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.nullable().optional()])) as {
      [K in keyof ClientFields]: z.ZodOptional<z.ZodNullable<ClientFields[K]>>;
    },
  )
  .meta({ description: 'any subset of the metadata; `null` removes a field' });

export type NewClient = z.output<typeof createClientBody>;
export type ClientPatch = z.output<typeof patchClientBody>;

/** A client as the API and the CLI show it: never its secret, except in the answer that made it. */
export const clientView = z
  .object({
    ...optionalFields,
    client_id: z.string(),
    client_id_issued_at: z.int().meta({ description: 'seconds since the epoch' }),
    client_secret: z.string().optional().meta({ description: 'only in the answer that created it' }),
    client_secret_expires_at: z.literal(0).optional().meta({ description: 'with `client_secret`: it does not expire' }),
  })
  .meta({ description: 'the registered metadata (RFC 7591), as stored' });

export const clientSecretView = z.object({ client_secret: z.string() });

// RFC 7591 defines client_secret, so it is no unknown field: say why it cannot be given.
function refuseClientSecret(input: unknown) {
  if (isJsonObject(input) && 'client_secret' in input) {
    throw new TallyError(400, 'unknown_field', 'client_secret is generated by the server and cannot be set', { field: 'client_secret' });
  }
}

export function parseNewClient(input: unknown): NewClient {
  refuseClientSecret(input);
  return parseInput(createClientBody, input);
}

export function parseClientPatch(input: unknown): ClientPatch {
  refuseClientSecret(input);
  return parseInput(patchClientBody, input);
}
