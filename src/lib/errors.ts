export interface TallyErrorOptions {
  /** The input at fault (a field name or dotted path); the message starts with it. */
  field?: string | undefined;
  /** Whether the message may be shown to whoever asked; by default when the status is below 500. */
  expose?: boolean;
  cause?: unknown;
}

/**
 * The one error class Tally throws on purpose (oidc-provider's `errors` and Koa's are its model).
 * `status` classifies the failure as HTTP does (400 bad input, 404 unknown, 409 conflict, 5xx ours),
 * a vocabulary every transport maps: the HTTP renderers send it, the CLI exits 2 for what may be
 * shown. `code` is stable, for programs. Nothing here knows how an error is written: each transport
 * does that in one place (http/errors.ts, http/admin/problem.ts, cli/index.ts).
 */
export class TallyError extends Error {
  readonly expose: boolean;
  readonly field: string | undefined;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    { field, expose = status < 500, cause }: TallyErrorOptions = {},
  ) {
    // The message is what every transport shows, so it names the field once, whoever wrote it.
    super(field && !message.startsWith(field) ? `${field}: ${message}` : message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.field = field;
    this.expose = expose;
  }
}

type Foreign = { statusCode?: number; status?: number; code?: string; error?: string; error_description?: string; message?: string };

/**
 * The error as it may be shown, or undefined for one that must not be (a 500: logged, never shown).
 * A library's 4xx counts too: oidc-provider's errors carry `statusCode`, `error` and
 * `error_description`; Express's and body-parser's carry `status` and a message.
 */
export function exposedError(error: unknown): TallyError | undefined {
  if (error instanceof TallyError) return error.expose ? error : undefined;
  const e = error as Foreign | undefined;
  const status = e?.statusCode ?? e?.status;
  if (!e || !status || status < 400 || status >= 500) return undefined;
  return new TallyError(status, e.code ?? e.error ?? 'invalid_request', e.error_description ?? e.message ?? 'Bad request', { cause: error });
}
