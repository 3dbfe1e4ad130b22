import type { z } from 'zod';
import type { Runtime } from '../runtime.js';
import { TallyError } from '../lib/errors.js';
import { CLIENT_AUTH_METHODS } from '../lib/enums.js';
import { createProvider } from '../oidc/provider.js';
import { needsSecret, type ClientMetadata, type StoredClient } from '../storage/clients.js';
import { createClientBody, type ClientPatch, type clientView, type NewClient } from './client-schemas.js';
import { firstIssue, notFound } from './input.js';
import { pageOf, type Page, type PageOf } from './pagination.js';

// The operations on clients, for the admin API and the CLI. Inputs come parsed (parseNewClient,
// parseClientPatch); what is checked here needs more than the schema: oidc-provider's own reading
// of the metadata, and the store.

export type ClientView = z.output<typeof clientView>;

const invalidMetadata = (message: string, field?: string) => new TallyError(400, 'invalid_client_metadata', message, { field });

type ValidatorProvider = { Client: { validate(metadata: object): Promise<void> } };

const validators = new WeakMap<Runtime, ValidatorProvider>();

function validatorFor(runtime: Runtime): ValidatorProvider {
  let provider = validators.get(runtime);
  if (!provider) {
    provider = createProvider(runtime) as unknown as ValidatorProvider;
    validators.set(runtime, provider);
  }
  return provider;
}

/** oidc-provider names the field first in its descriptions ("redirect_uris must ..."), or the auth method ("tls_client_auth requires ..."). */
function fieldOf(description: string): string | undefined {
  const word = /^([a-z_]+)\b/.exec(description)?.[1];
  return word && (CLIENT_AUTH_METHODS as readonly string[]).includes(word) ? 'token_endpoint_auth_method' : word;
}

/** Checks parsed metadata as oidc-provider will read it; throws invalid_client_metadata. */
async function checkWithProvider(runtime: Runtime, metadata: ClientMetadata): Promise<void> {
  if (metadata.token_endpoint_auth_method === 'client_secret_jwt') {
    throw invalidMetadata(
      'client_secret_jwt is not supported: client secrets are stored as hashes, so use client_secret_basic, client_secret_post or private_key_jwt',
      'token_endpoint_auth_method',
    );
  }
  try {
    await validatorFor(runtime).Client.validate({ client_id: 'validation', ...metadata, ...(needsSecret(metadata) ? { client_secret: 'x'.repeat(43) } : {}) });
  } catch (error) {
    const description = (error as { error_description?: string }).error_description ?? (error as Error).message;
    throw invalidMetadata(description, fieldOf(description));
  }
}

/** What the API and the CLI show of a client: its metadata, never its secret (except `clientSecret`, once). */
export function presentClient(client: StoredClient, clientSecret?: string): ClientView {
  return {
    ...(client.metadata as Omit<ClientView, 'client_id_issued_at'>),
    ...(clientSecret ? { client_secret: clientSecret, client_secret_expires_at: 0 as const } : {}),
    client_id_issued_at: Math.floor(client.createdAt.getTime() / 1000),
  };
}

/**
 * Checks, then stores the client with a generated secret (an HMAC at rest). The plain secret is in
 * the result, and nowhere else, ever.
 */
export async function registerClient(runtime: Runtime, metadata: NewClient): Promise<ClientView> {
  await checkWithProvider(runtime, metadata);
  if (metadata.client_id && (await runtime.clients.find(metadata.client_id))) {
    throw new TallyError(409, 'duplicate_client_id', `client_id ${metadata.client_id} is taken`, { field: 'client_id' });
  }
  const { client, clientSecret } = await runtime.clients.create(metadata);
  return presentClient(client, clientSecret);
}

/** Merges a partial update (a null removes a field) and checks the result as a whole. */
export async function updateClient(runtime: Runtime, id: string, patch: ClientPatch): Promise<ClientView> {
  const current = await runtime.clients.find(id);
  if (!current) throw notFound('client', id);
  if ('client_id' in patch && patch.client_id !== id) throw invalidMetadata('client_id cannot be changed', 'client_id');
  const merged: Record<string, unknown> = { ...current.metadata };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  // Rules across fields (redirect schemes, the code grant) hold for the result, not the patch alone.
  const parsed = createClientBody.safeParse(merged);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    throw invalidMetadata(message, field);
  }
  await checkWithProvider(runtime, parsed.data);
  const updated = await runtime.clients.update(id, parsed.data);
  if (!updated) throw notFound('client', id);
  return presentClient(updated.client, updated.clientSecret);
}

export async function getClient(runtime: Runtime, id: string): Promise<ClientView> {
  const client = await runtime.clients.find(id);
  if (!client) throw notFound('client', id);
  return presentClient(client);
}

/** Oldest first, without secrets. */
export async function listClients(runtime: Runtime, page: Page): Promise<PageOf<ClientView>> {
  const rows = await runtime.clients.list(page.limit + 1, page.after);
  return pageOf(
    rows,
    page.limit,
    (c) => ({ createdAt: c.createdAt, id: String(c.metadata.client_id) }),
    (c) => presentClient(c),
  );
}

/** Every token of the client becomes inactive first, so none outlives it. */
export async function deleteClient(runtime: Runtime, id: string): Promise<void> {
  if (!(await runtime.clients.find(id))) throw notFound('client', id);
  await runtime.revocation.revokeScope({ clientId: id });
  await runtime.clients.delete(id);
}

/** A new secret, shown this once; the old one stops working at once. */
export async function rotateClientSecret(runtime: Runtime, id: string): Promise<{ client_secret: string }> {
  const client = await runtime.clients.find(id);
  if (!client) throw notFound('client', id);
  if (!client.secretHash) {
    throw new TallyError(
      409,
      'no_secret',
      `client ${id} authenticates without a secret (token_endpoint_auth_method ${client.metadata.token_endpoint_auth_method})`,
    );
  }
  const clientSecret = await runtime.clients.rotateSecret(id);
  if (!clientSecret) throw notFound('client', id);
  return { client_secret: clientSecret };
}
