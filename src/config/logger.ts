import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs; anything that could carry a credential is redacted at the source. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'res.headers["set-cookie"]',
        '*.password',
        '*.client_secret',
        '*.token',
        '*.access_token',
        '*.refresh_token',
        '*.code',
      ],
      censor: '[redacted]',
    },
  });
}
