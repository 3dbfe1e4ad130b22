import type { Logger } from '../config/logger.js';

/**
 * The listener for what escapes oidc-provider's own error handlers and reaches Koa (which would print
 * it to stderr unless the app has an error listener when its request handler is made). Mostly clients
 * that went away mid-request (nothing to answer) or sent malformed HTTP: debug. Anything else was a
 * 500 for someone: an error, with `event: "server_error"`.
 */
export function logEscapedErrors(logger: Logger): (error: Error & { code?: string }) => void {
  return (error) => {
    const clientSide = error.code === 'ECONNRESET' || error.code === 'ECONNABORTED' || error.message === 'aborted' || String(error.code).startsWith('HPE_');
    if (clientSide) logger.debug({ err: error }, 'request aborted or malformed');
    else logger.error({ err: error, event: 'server_error' }, 'oidc-provider request failed');
  };
}
