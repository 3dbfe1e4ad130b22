/**
 * Everything Tally relies on inside oidc-provider beyond its documented API: the files of its lib/ it
 * imports, the configuration it resolved, and every method of its models replaced. Nothing else in
 * Tally imports `oidc-provider/lib/...` or patches a model, so an upgrade is reviewed here, and
 * library.ts refuses to start on a version this was not written for (version.ts).
 */
export {
  DPOP_IAT_WINDOW,
  filterClaims,
  findClient,
  findToken,
  isValidScope,
  markDpopProofOnce,
  NO_VSCHAR,
  PROVIDER_BODY_LIMIT,
  providerConfiguration,
  providerRequestStore,
  validAccount,
  validResourceServer,
  type ProviderClient,
  type ProviderConfiguration,
} from './library.js';
export {
  adjustFoundAccessTokens,
  interceptAccessTokenFind,
  interceptUserCodeFind,
  recogniseScopes,
  replaceClientSecretComparison,
  replaceReplayDetection,
  replaceTokenIds,
  sealRefreshTokenValues,
  type TokenInstance,
} from './patches.js';
export { installFirstSessionSave } from './first-session-save.js';
export { installNoncedFormPost } from './form-post.js';
export { SUPPORTED_RANGE } from './version.js';
