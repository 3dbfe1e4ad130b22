// A sender-constrained token's binding (CONTRACT.md, "Sender-constrained tokens"): the thumbprint of a
// DPoP key (`jkt`, RFC 9449) or of a client certificate (`x5t#S256`, RFC 8705), as oidc-provider's
// models hold it, as a JWT's `cnf` claim carries it, and as the ledger entry records it.

/** The binding as oidc-provider's token models (and so their payloads) hold it. */
export interface TokenBinding {
  jkt?: string | undefined;
  'x5t#S256'?: string | undefined;
}

/** The binding a `cnf` claim names (RFC 7800 confirmation); nothing for an unbound token. */
export function bindingOf(cnf: unknown): TokenBinding {
  if (typeof cnf !== 'object' || cnf === null) return {};
  const { jkt, 'x5t#S256': x5t } = cnf as Record<string, unknown>;
  const binding: TokenBinding = {};
  if (typeof jkt === 'string') binding.jkt = jkt;
  if (typeof x5t === 'string') binding['x5t#S256'] = x5t;
  return binding;
}

/** The ledger entry's columns for a token's binding (null when unbound). */
export function entryBinding(token: TokenBinding): { cnfJkt: string | null; cnfX5tS256: string | null } {
  return {
    cnfJkt: typeof token.jkt === 'string' ? token.jkt : null,
    cnfX5tS256: typeof token['x5t#S256'] === 'string' ? token['x5t#S256'] : null,
  };
}
