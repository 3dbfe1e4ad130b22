import { z } from 'zod';
import { plainText } from '../lib/text.js';
import { APPLICATION_TYPES, ASYMMETRIC_SIGNING_ALGS, CLIENT_AUTH_METHODS, GRANT_TYPES, RESPONSE_TYPES, TOKEN_MODES } from '../lib/enums.js';

// RFC 7591 client metadata as Tally accepts it, checked before oidc-provider's own validation.

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

const absoluteUri = plainText(2000).refine((v) => URL.canParse(v), 'must be an absolute URI');

/** RFC 6749 §3.1.2 and RFC 8252: absolute, no fragment; https, or http on loopback, or a native app's own scheme. */
const redirectUri = absoluteUri.refine((v) => !v.includes('#'), 'must not contain a fragment');

const scopeString = z
  .string()
  .max(2000)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, 'must be space-separated scope tokens');

const clientFields = {
  client_id: z.string().regex(/^[\w.:-]{1,128}$/, 'must be 1 to 128 letters, digits, or . _ : -'),
  client_name: plainText(200),
  // RFC 7591 tools send an empty list for what does not apply: an empty list means none. Whether a
  // client needs members (redirect URIs for the code flow, say) is oidc-provider's check.
  redirect_uris: z.array(redirectUri).max(50),
  post_logout_redirect_uris: z.array(redirectUri).max(50),
  grant_types: z.array(z.enum(GRANT_TYPES)).max(GRANT_TYPES.length),
  response_types: z.array(z.enum(RESPONSE_TYPES)).max(RESPONSE_TYPES.length),
  // client_secret_jwt passes here to be refused later with the reason (validateClientMetadata).
  token_endpoint_auth_method: z.enum([...CLIENT_AUTH_METHODS, 'client_secret_jwt']),
  scope: scopeString,
  token_mode: z.enum(TOKEN_MODES),
  application_type: z.enum(APPLICATION_TYPES),
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
};

type ClientFields = typeof clientFields;

type RedirectFields = { redirect_uris?: string[] | null | undefined; post_logout_redirect_uris?: string[] | null | undefined; application_type?: string | null | undefined };

function checkRedirectSchemes(value: RedirectFields, ctx: z.RefinementCtx) {
  for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    (value[field] ?? []).forEach((uri, index) => {
      if (!URL.canParse(uri)) return;
      const url = new URL(uri);
      const ok = url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) || (value.application_type === 'native' && !['http:', 'https:'].includes(url.protocol));
      if (!ok) ctx.addIssue({ code: 'custom', path: [field, index], message: 'must use https (http only on a loopback address; custom schemes only for native apps)' });
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
export const createClientBody = z
  .strictObject(Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.optional()])) as { [K in keyof ClientFields]: z.ZodOptional<ClientFields[K]> })
  .superRefine(checkRedirectSchemes)
  .superRefine(checkCodeGrant);

/** PATCH: every field optional; null removes it. Schemes are checked on the merged result. */
export const patchClientBody = z.strictObject(Object.fromEntries(Object.entries(clientFields).map(([k, v]) => [k, v.nullable().optional()])) as { [K in keyof ClientFields]: z.ZodOptional<z.ZodNullable<ClientFields[K]>> });

