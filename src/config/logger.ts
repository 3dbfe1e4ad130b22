import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** JSON logs; anything that could carry a credential is redacted at the source. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
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
        // An authorization or device code where parameters are logged; an error's `code` (ECONNREFUSED,
        // 57P01, …) is what says why it failed, and stays.
        'params.code',
        'body.code',
        'query.code',
        '*.params.code',
        '*.body.code',
        '*.query.code',
        '*.device_code',
        '*.user_code',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
