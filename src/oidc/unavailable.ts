import type { EventEmitter } from 'node:events';
import Provider, { errors } from 'oidc-provider';
import { providerConfiguration } from './internals/index.js';
import { DATABASE_UNAVAILABLE, isDatabaseUnavailable, RETRY_AFTER_SECONDS, type UnavailableNotice } from '../storage/unavailable.js';

// How every surface words an answer given while the database is unavailable.
export const UNAVAILABLE_DESCRIPTION = 'the service is temporarily unavailable; try again in a few seconds';
/** The OAuth error body (RFC 6749's `temporarily_unavailable`). */
export const UNAVAILABLE_BODY = { error: 'temporarily_unavailable', error_description: UNAVAILABLE_DESCRIPTION } as const;
/** The locals of the error page shown to people. */
export const UNAVAILABLE_PAGE = {
  title: 'Temporarily unavailable',
  error: 'temporarily_unavailable',
  description: 'This service cannot complete your request right now. Try again in a few seconds.',
};

/**
 * RFC 6749's temporarily_unavailable as a 503. oidc-provider shows an exposed error as it is
 * ({error, error_description} with its statusCode), anything else as a 500 server_error; at the
 * authorization endpoint it sends it to the client's redirect_uri when it knows both (§4.1.2.1).
 */
export class TemporarilyUnavailable extends errors.TemporarilyUnavailable {
  constructor(cause: unknown) {
    super(UNAVAILABLE_DESCRIPTION, { cause });
    this.status = this.statusCode = 503;
    this.expose = true;
  }
}

/** The database error behind each oidc-provider request refused for one (the first; reported once). */
const causes = new WeakMap<object, unknown>();

function noteCause(ctx: object | undefined, error: unknown) {
  const cause = error instanceof TemporarilyUnavailable ? error.cause : error;
  if (ctx && !causes.has(ctx)) causes.set(ctx, cause);
}

/** A database failure as oidc-provider must meet it (see TemporarilyUnavailable); any other error unchanged. */
function translate(error: unknown): unknown {
  if (!isDatabaseUnavailable(error)) return error;
  noteCause(Provider.ctx, error);
  return error instanceof TemporarilyUnavailable ? error : new TemporarilyUnavailable(error);
}

/**
 * The store as oidc-provider's models and Tally's hooks into them call it: every method that fails
 * because the database is unavailable fails with TemporarilyUnavailable instead. Stores are wrapped,
 * not each call site, so that a lookup added later cannot turn an outage back into a 500.
 */
export function translatingUnavailable<T extends object>(store: T): T {
  const wrapped = new WeakMap<(...args: unknown[]) => unknown, (...args: unknown[]) => unknown>();
  return new Proxy(store, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      let translated = wrapped.get(method);
      if (!translated) {
        translated = (...args: unknown[]) => {
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            throw translate(error);
          }
          return result instanceof Promise ? result.catch((error: unknown) => Promise.reject(translate(error))) : result;
        };
        wrapped.set(method, translated);
      }
      return translated;
    },
  });
}

/**
 * The adapters as oidc-provider calls them. Their stores translate already; this notes the request
 * once more for a read that several requests share (the ledger manager's reads of one turn), which
 * was translated in the first one's context.
 */
export function translatingAdapters<A extends object>(adapterFor: (model: string) => A): (model: string) => A {
  return (model) => translatingUnavailable(adapterFor(model));
}

/**
 * Outermost Koa middleware: a request refused because the database is unavailable gets Retry-After
 * (and no-store, which not every endpoint of oidc-provider sets) and is reported once on `events`
 * (DATABASE_UNAVAILABLE). What fails after oidc-provider's own error handlers (the session it saves
 * when a request ends) is answered here, as they would have answered it.
 */
export function installUnavailableAnswers(provider: Provider, events: EventEmitter | undefined): void {
  const { renderError } = providerConfiguration(provider);
  provider.use(async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      noteCause(ctx, error);
      ctx.remove('location');
      ctx.status = 503;
      if (ctx.accepts('json', 'html') === 'html') await renderError(ctx, { ...UNAVAILABLE_BODY }, error);
      else ctx.body = { ...UNAVAILABLE_BODY };
    }
    if (!causes.has(ctx)) return;
    if (ctx.status === 503) ctx.set({ 'retry-after': String(RETRY_AFTER_SECONDS), 'cache-control': 'no-store' });
    events?.emit(DATABASE_UNAVAILABLE, { path: ctx.path, error: causes.get(ctx) } satisfies UnavailableNotice);
  });
}
