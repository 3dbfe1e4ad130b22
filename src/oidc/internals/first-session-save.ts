import Provider from 'oidc-provider';

type SessionInstance = { id: string; exp?: number; save(ttl: number): Promise<unknown> };

/**
 * oidc-provider saves a session touched by a request once more after its error handler ran
 * (`ensureSessionSave`) with `persist()`, which throws for a session that was never saved. That is
 * the case on the device pages reached without the session cookie: their error handler renders the
 * user-code form again with a new XSRF secret kept in a session created by that very request, and the
 * throw turned the 400 page into a 500. Such a session is saved here as the session middleware would
 * have saved it, cookie included, so that the form it rendered can be submitted.
 */
export function installFirstSessionSave(provider: Provider, { sessionTtl, cookie }: { sessionTtl: number; cookie: object }): void {
  const prototype = provider.Session.prototype as unknown as SessionInstance & { persist(this: SessionInstance): Promise<unknown> };
  const persist = prototype.persist;
  prototype.persist = async function persistOrSaveFirst(this: SessionInstance) {
    if (typeof this.exp === 'number') return persist.call(this);
    const ctx = Provider.ctx;
    if (!ctx) return undefined;
    ctx.oidc.cookies.set(provider.cookieName('session'), this.id, cookie);
    return this.save(sessionTtl);
  };
}
