/**
 * Errors that cross a boundary (IPC, the database, the CLI) are plain objects; classes exist only where a
 * caller branches on them.
 */

/** The form an error takes on the wire and in the database. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string | undefined;
  stack?: string | undefined;
  /** false when the error asked not to be retried. */
  retryable?: boolean | undefined;
}

/** An error with a stable `code`; `exitCode` is what the CLI exits with when it reaches the top. */
export class PreforkError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PreforkError';
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/**
 * Thrown (or returned as a cause) by a task that must not be retried whatever its attempt budget.
 * Any error with `retryable === false` is treated the same way.
 */
export class NonRetryableError extends Error {
  readonly retryable = false;
  readonly code: string;
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NonRetryableError';
    this.code = options.code ?? 'NON_RETRYABLE';
  }
}

/**
 * The connection was lost while COMMIT was on its way: the transaction may or may not have been committed.
 * Never retried, neither by the transaction helper nor as a task attempt (`retryable: false`): check what
 * the database holds before running the work again. `cause` is the connection error.
 */
export class CommitOutcomeUnknownError extends PreforkError {
  readonly retryable = false;
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'COMMIT_OUTCOME_UNKNOWN',
      `the connection was lost during COMMIT, so the transaction may or may not have been committed; not retried (${reason.replace(/\s*\n\s*/g, ' ')})`,
      { cause },
    );
    this.name = 'CommitOutcomeUnknownError';
  }
}

/** Turns anything thrown into an Error, keeping the original as `cause` when it was not one. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'object' && value !== null && 'message' in value) {
    const e = new Error(String((value as { message: unknown }).message), { cause: value });
    const name = (value as { name?: unknown }).name;
    if (typeof name === 'string') e.name = name;
    return e;
  }
  return new Error(typeof value === 'string' ? value : `non-error thrown: ${safeString(value)}`, { cause: value });
}

export function serializeError(value: unknown): SerializedError {
  const error = coerceError(value);
  const code = (error as { code?: unknown }).code;
  const retryable = (error as { retryable?: unknown }).retryable;
  return {
    name: storableText(error.name || 'Error'),
    message: storableText(error.message),
    code: typeof code === 'string' ? storableText(code) : undefined,
    stack: error.stack === undefined ? undefined : storableText(error.stack),
    retryable: retryable === false ? false : undefined,
  };
}

/**
 * Text that PostgreSQL can store: each NUL character becomes U+FFFD. An error is recorded as jsonb, which holds
 * no NUL (see queue/json-text.ts); a message quoting binary input must not stop its task's failure being written.
 */
export function storableText(text: string): string {
  return typeof text !== 'string' || !text.includes('\0') ? text : text.replaceAll('\0', '\uFFFD');
}

/** The part of a serialized error shown to users: no stack. */
export function publicError(error: SerializedError | null | undefined): { name: string; message: string; code: string | null } | null {
  if (!error) return null;
  return { name: error.name, message: error.message, code: error.code ?? null };
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
