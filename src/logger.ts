import { pino, type Logger, type LevelWithSilent } from 'pino';
import { formatPrettyLine } from './pretty-log.js';

export type { Logger } from 'pino';

export const logLevels: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** `json`: one JSON object per line (the default). `pretty`: aligned, coloured lines for a human at a terminal. */
export type LogFormat = 'json' | 'pretty';

/** `--pretty` / `--no-pretty` when given, else pretty exactly when stdout is a terminal. */
export function resolveLogFormat(pretty: boolean | undefined, stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return (pretty ?? stdout.isTTY === true) ? 'pretty' : 'json';
}

/** Colours for a terminal; NO_COLOR turns them off, FORCE_COLOR on. */
function useColour(): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR !== undefined) return process.env.FORCE_COLOR !== '0';
  return process.stdout.isTTY === true;
}

/**
 * Log lines on stdout: JSON by default, or pretty (formatted in this process, synchronously: no transport,
 * no worker thread). Every line carries `pid`. Fields that could carry a secret are censored wherever they
 * appear; connection strings are only ever logged after redactConnectionString.
 */
export function createLogger(options: { level?: string; base?: Record<string, unknown>; format?: LogFormat | undefined } = {}): Logger {
  const destination = pino.destination({ dest: 1, sync: true });
  const colour = options.format === 'pretty' && useColour();
  const stream = options.format === 'pretty' ? { write: (line: string) => destination.write(formatPrettyLine(line, colour)) } : destination;
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid, ...options.base },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeErr },
      redact: {
        paths: [
          'password',
          '*.password',
          'databaseUrl',
          '*.databaseUrl',
          'connectionString',
          '*.connectionString',
          'sslpassword',
          '*.sslpassword',
        ],
        censor: '***',
      },
    },
    stream,
  );
}

/**
 * pino's error serializer, with the causes' messages appended only where the message does not say them already
 * (ours do: `could not load the task module …: missing KEY` came out as `…: missing KEY: missing KEY`), and no
 * `stack` for an error logged without one (pino writes an empty one).
 */
function serializeErr(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error) as { message?: string; stack?: string } | undefined;
  if (serialized?.stack === '') delete serialized.stack;
  if (!serialized || !(error instanceof Error)) return serialized;
  let message = error.message;
  const seen = new Set<unknown>([error]);
  for (let cause: unknown = error.cause; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    if (cause.message && !message.includes(cause.message)) message += `: ${cause.message}`;
  }
  serialized.message = message;
  return serialized;
}
