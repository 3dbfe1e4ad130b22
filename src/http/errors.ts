/** An error whose status and message may be shown to the caller; anything else is a 500, logged. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** oidc-provider's errors carry `statusCode`, `expose` and an OAuth `error` code. */
export function exposedStatus(error: unknown): number | undefined {
  if (error instanceof HttpError) return error.status;
  const e = error as { statusCode?: number; status?: number; expose?: boolean } | undefined;
  const status = e?.statusCode ?? e?.status;
  return status && status >= 400 && status < 500 ? status : undefined;
}
