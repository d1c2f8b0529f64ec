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

/**
 * Turns anything thrown into an Error, keeping the original as `cause` when it was not one. Never throws, whatever
 * was thrown (an object whose `message` getter throws, a revoked Proxy). An object that is not an Error (a plain
 * `{ message, code, retryable: false }`, an error from another realm) keeps the `name`, `code`, `stack` and
 * `retryable` it has with the right types, each read on its own: one whose getter throws is left out, and the
 * others still count (its `retryable: false` still stops the retries).
 */
export function coerceError(value: unknown): Error {
  try {
    if (value instanceof Error) return value;
    if (typeof value !== 'object' || value === null) {
      return new Error(typeof value === 'string' ? value : `non-error thrown: ${safeString(value)}`, { cause: value });
    }
    const e = new Error('message' in value ? String(value.message) : `non-error thrown: ${safeString(value)}`, { cause: value }) as Error &
      Record<string, unknown>;
    const [name, code, stack, retryable] = ['name', 'code', 'stack', 'retryable'].map((key) => readProperty(value, key));
    if (typeof name === 'string') e.name = name;
    if (typeof code === 'string') e.code = code;
    if (typeof stack === 'string') e.stack = stack;
    if (typeof retryable === 'boolean') e.retryable = retryable;
    return e;
  } catch (error) {
    return new Error(`a thrown value that could not be read (reading it threw: ${readableMessage(error)})`, { cause: value });
  }
}

/**
 * An error as it is recorded and sent between processes: text only, storable by PostgreSQL (storableText). Never
 * throws: each property is read on its own, and one whose getter throws is left out, so a task that throws
 * something strange fails like any other instead of taking its worker (and the tasks beside it) down.
 */
export function serializeError(value: unknown): SerializedError {
  const error = coerceError(value);
  const [name, message, code, stack, retryable] = ['name', 'message', 'code', 'stack', 'retryable'].map((key) => readProperty(error, key));
  return {
    name: storableText(name === undefined || name === null || name === '' ? 'Error' : name === 'error' ? className(error) : asText(name)),
    message: storableText(message === undefined || message === null ? '' : asText(message)),
    code: typeof code === 'string' ? storableText(code) : undefined,
    stack: typeof stack === 'string' ? storableText(stack) : undefined,
    retryable: retryable === false ? false : undefined,
  };
}

const nul = /\0/g;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text that PostgreSQL can store as jsonb: each NUL character and each lone UTF-16 surrogate becomes U+FFFD (see
 * queue/task-input.ts). For an error's text: a message quoting binary input must not stop its failure being written.
 */
export function storableText(text: string): string {
  return text.replace(nul, '\uFFFD').replace(loneSurrogate, '\uFFFD');
}

/**
 * The name of an error's class, for an error named 'error': pg's DatabaseError names itself after the protocol
 * message it came in, 'error' for every failed query, which says nothing. Its SQLSTATE stays in `code`.
 */
function className(error: Error): string {
  try {
    const name = (Object.getPrototypeOf(error) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof name === 'string' && name !== '' ? name : 'Error';
  } catch {
    return 'Error';
  }
}

/** `value[key]`, or undefined when reading it throws (a getter that throws, a Proxy's trap). */
function readProperty(value: object, key: string): unknown {
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** String(value), or a placeholder when even that throws (a toString that throws). */
function asText(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '[unreadable]';
  }
}

function readableMessage(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return '[unreadable]';
  }
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
