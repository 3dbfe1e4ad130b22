import type Provider from 'oidc-provider';
import type { LedgerManager } from '../tokens/ledger-manager.js';

const ledgers = new WeakMap<Provider, LedgerManager>();

/** Records the ledger manager a provider was built with (createProvider). */
export function attachLedger(provider: Provider, ledger: LedgerManager): void {
  ledgers.set(provider, ledger);
}

/**
 * The ledger manager a provider was built with: what answers beside oidc-provider (the direct
 * introspection, admin authentication) judges the tokens its models find with the same rules.
 */
export function ledgerOf(provider: Provider): LedgerManager {
  const ledger = ledgers.get(provider);
  if (!ledger) throw new Error('this provider was not built by createProvider');
  return ledger;
}
