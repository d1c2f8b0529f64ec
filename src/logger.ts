import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export const logLevels: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * JSON lines on stdout. Fields that could carry a secret are censored wherever they appear; connection
 * strings are only ever logged after redactConnectionString.
 */
export function createLogger(options: { level?: string; base?: Record<string, unknown> } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid, ...options.base },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['password', '*.password', 'databaseUrl', '*.databaseUrl', 'connectionString', '*.connectionString'],
        censor: '***',
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}
