import type Provider from 'oidc-provider';
import type { Runtime } from '../runtime.js';
import type { Keyring } from '../storage/keys.js';
import type { ProviderHolder } from './provider-holder.js';

/**
 * Watches the keys table: a key added by `tally keys rotate` (on any replica), a key whose activation
 * delay has passed, or a retired key changes the signing set, and the provider is rebuilt with it.
 */
export function startKeyReload(runtime: Runtime, holder: ProviderHolder, build: (keyring: Keyring) => Provider): () => void {
  let fingerprint = runtime.keyring.signingFingerprint;
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const keyring = await runtime.loadKeyring();
      if (keyring.signingFingerprint !== fingerprint) {
        holder.replace(build(keyring));
        fingerprint = keyring.signingFingerprint;
        runtime.logger.info({ keys: fingerprint }, 'signing keys changed');
      }
    } catch (error) {
      runtime.logger.warn({ err: error }, 'signing keys not reloaded');
    } finally {
      running = false;
    }
  }, runtime.config.keyReloadInterval * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
