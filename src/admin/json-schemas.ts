import { z } from 'zod';
import { clientSecretView, clientView, createClientBody, patchClientBody } from './client-schemas.js';
import {
  auditEventView,
  createUserBody,
  ledgerEntryView,
  pageQuery,
  pageView,
  pruneBody,
  pruneResult,
  revocationBody,
  revocationPreview,
  revocationPreviewQuery,
  revocationResult,
  keyRotationBody,
  signingKeyRotation,
  signingKeyView,
  statsQuery,
  statsView,
  tokenQuery,
  tokenStatus,
  tokenType,
  userPatchBody,
  userQuery,
  userView,
} from './schemas.js';

/** A JSON Schema (2020-12) document, as z.toJSONSchema writes it. */
export type JsonSchema = Record<string, unknown>;

/**
 * Every schema of the admin layer under the name the OpenAPI document gives it. A schema used inside
 * another (TokenStatus in LedgerEntry, say) is referenced by that name, not copied.
 */
const NAMED = {
  ClientCreate: createClientBody,
  ClientPatch: patchClientBody,
  Client: clientView,
  ClientList: pageView(clientView),
  ClientSecret: clientSecretView,
  UserCreate: createUserBody,
  UserPatch: userPatchBody,
  UserQuery: userQuery.omit({ limit: true, cursor: true }),
  User: userView,
  UserList: pageView(userView),
  TokenType: tokenType,
  TokenStatus: tokenStatus,
  TokenQuery: tokenQuery.omit({ limit: true, cursor: true }),
  LedgerEntry: ledgerEntryView,
  LedgerEntryList: pageView(ledgerEntryView),
  RevocationRequest: revocationBody,
  RevocationResult: revocationResult,
  RevocationPreviewQuery: revocationPreviewQuery,
  RevocationPreview: revocationPreview,
  SigningKey: signingKeyView,
  SigningKeyList: pageView(signingKeyView),
  KeyRotationRequest: keyRotationBody,
  SigningKeyRotation: signingKeyRotation,
  StatsQuery: statsQuery,
  Stats: statsView,
  PruneRequest: pruneBody,
  PruneResult: pruneResult,
  AuditEvent: auditEventView,
  AuditEventList: pageView(auditEventView),
  PageQuery: pageQuery,
};

export type SchemaName = keyof typeof NAMED;

/**
 * The JSON Schemas of the admin layer, generated from its zod schemas; `ref` makes the reference to
 * a named one (`#/components/schemas/<name>` in OpenAPI). Inputs are described as accepted (`io:
 * 'input'`): a strict object refuses unknown fields, an answer's object may grow. Refinements (the
 * redirect schemes, say) have no JSON Schema: the descriptions say what they check.
 */
export function adminJsonSchemas(ref: (name: string) => string): Record<SchemaName, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(NAMED)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io: 'input', uri: ref });
  // Each comes as a document of its own; inside another document they are plain schemas.
  return Object.fromEntries(Object.entries(schemas).map(([name, { $schema: _s, $id: _i, ...schema }]) => [name, schema])) as unknown as Record<
    SchemaName,
    JsonSchema
  >;
}
