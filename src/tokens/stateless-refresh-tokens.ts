import type { AdapterPayload } from 'oidc-provider';
import { sealCompact, unsealCompact } from '../lib/crypto.js';
import type { Keyring } from '../storage/keys.js';

const CONTEXT = 'stateless-refresh-token';

/**
 * Self-contained refresh tokens: the whole oidc-provider payload, encrypted and authenticated
 * (AES-256-GCM) under the payload key, so nothing is written at issuance and nothing private is readable.
 */
export function createStatelessRefreshTokens(keyring: Pick<Keyring, 'payloadKey' | 'payloadKeys'>) {
  return {
    seal(payload: AdapterPayload): string {
      return sealCompact(JSON.stringify(payload), keyring.payloadKey, CONTEXT);
    },
    /** The payload, or undefined for anything that is not a refresh token sealed by this server. */
    open(value: string): AdapterPayload | undefined {
      if (value.length < 64 || value.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
      const plain = unsealCompact(value, keyring.payloadKeys, CONTEXT);
      if (plain === undefined) return undefined;
      const payload = JSON.parse(plain) as AdapterPayload;
      return payload.kind === 'RefreshToken' ? payload : undefined;
    },
  };
}

export type StatelessRefreshTokens = ReturnType<typeof createStatelessRefreshTokens>;
