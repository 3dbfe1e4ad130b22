import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

/**
 * The provider in service. oidc-provider fixes its keys at construction, so a key change (rotation,
 * a key becoming active or retired) builds a new provider; requests already running finish on the old
 * one, and everything else asks the holder for the current one.
 */
export interface ProviderHolder {
  readonly current: Provider;
  /** The current provider's request handler. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  replace(next: Provider): void;
  /** Runs for the current provider and for every later one (event listeners, say). */
  onProvider(setup: (provider: Provider) => void): void;
}

export function holdProvider(initial: Provider): ProviderHolder {
  let current = initial;
  let callback = initial.callback();
  const setups: ((provider: Provider) => void)[] = [];
  return {
    get current() {
      return current;
    },
    handle(req, res) {
      void callback(req, res);
    },
    replace(next) {
      for (const setup of setups) setup(next);
      current = next;
      callback = next.callback();
    },
    onProvider(setup) {
      setups.push(setup);
      setup(current);
    },
  };
}
