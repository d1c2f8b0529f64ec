/**
 * The one place that decides whether a database error is worth another try.
 *
 * - `connection`: the connection failed or died (refused, reset, timed out, terminated by the server). A new
 *   connection may well work: reconnect, then retry what had not completed.
 * - `unavailable`: the server is up but turns new sessions away for now (too many connections, starting up,
 *   shutting down). Retry the connect after a wait.
 * - `serialization`: 40001 / 40P01. The server rolled the transaction back; rerun the WHOLE transaction. A
 *   single statement is never retried on its own.
 * - `permanent`: everything else, unknown errors included: retrying repeats the same answer or hides a bug.
 *
 * Deliberately permanent, though they can look transient:
 * - 57014 query_canceled: a statement_timeout is a deadline the task chose, and the same code is what
 *   pg_cancel_backend (the primary's hard time limit) produces. Retrying would multiply the deadline and undo
 *   the cancellation. A task that wants another go gets one from its attempts and backoff.
 * - 55P03 lock_not_available: lock_timeout or NOWAIT, again a bound the task chose; the same reasoning.
 * - 25P03 / 25P04: idle-in-transaction or transaction timeout ended the session; rerunning the same code
 *   idles just as long.
 * - ENOTFOUND: the name does not resolve. The primary already connected with this URL before any task ran,
 *   so a host that does not resolve now is a configuration problem, not a blip (EAI_AGAIN, a resolver that
 *   could not answer, is transient).
 * - prefork's own errors (PreforkError): a connect that already used up its retries, a closed task
 *   connection, an unknown commit outcome. They are final by construction. Except DATABASE_UNREACHABLE, which
 *   only names pg's error (its cause) for the Client's callers: that is classified as the cause is.
 */
import { PreforkError } from '../errors.js';

export type DatabaseErrorCategory = 'connection' | 'unavailable' | 'serialization' | 'permanent';

export interface DatabaseErrorClassification {
  transient: boolean;
  category: DatabaseErrorCategory;
  /** Why, in a few words: goes into logs and retry events. */
  reason: string;
  /** The SQLSTATE, errno code or prefork code that decided, when there was one. */
  code?: string;
}

const transientErrno: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'broken pipe',
  ETIMEDOUT: 'network timeout',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ENETDOWN: 'network down',
  EADDRNOTAVAIL: 'no local address available',
  EAI_AGAIN: 'temporary DNS failure',
};

const sqlStates: Record<string, [DatabaseErrorCategory, string]> = {
  '08P01': ['permanent', 'protocol violation'],
  '57P01': ['connection', 'server terminated the connection (admin shutdown)'],
  '57P02': ['connection', 'server terminated the connection (crash shutdown)'],
  '57P05': ['connection', 'server closed an idle session'],
  '57P03': ['unavailable', 'server cannot accept connections now'],
  '53300': ['unavailable', 'too many connections'],
  '53400': ['unavailable', 'configuration limit exceeded'],
  '40001': ['serialization', 'serialization failure'],
  '40P01': ['serialization', 'deadlock detected'],
  '57014': ['permanent', 'query canceled (statement timeout or cancel request): a deadline, not retried'],
  '55P03': ['permanent', 'lock not available (lock_timeout or NOWAIT): a deadline, not retried'],
  '25P03': ['permanent', 'idle-in-transaction timeout'],
  '25P04': ['permanent', 'transaction timeout'],
};

const sqlStateClasses: Record<string, [DatabaseErrorCategory, string]> = {
  '08': ['connection', 'connection exception'],
  '28': ['permanent', 'authentication failed'],
  '3D': ['permanent', 'unknown database'],
  '42': ['permanent', 'syntax error or undefined object'],
  '23': ['permanent', 'integrity constraint violation'],
  '22': ['permanent', 'data exception'],
};

/** pg's own errors carry no code; these messages mean the socket is gone. */
const connectionLostMessages: Record<string, string> = {
  'Connection terminated unexpectedly': 'connection terminated unexpectedly',
  'Connection terminated due to connection timeout': 'connect timeout',
  'timeout expired': 'connect timeout',
  'Client has encountered a connection error and is not queryable': 'connection broken earlier',
  'Postgres connection has been discarded': 'connection discarded after a failed rollback',
};

export function classifyDatabaseError(error: unknown): DatabaseErrorClassification {
  return classify(error, 0);
}

export function isTransientDatabaseError(error: unknown): boolean {
  return classifyDatabaseError(error).transient;
}

function classify(error: unknown, depth: number): DatabaseErrorClassification {
  if (typeof error !== 'object' || error === null) return permanent('not an error object');
  if (error instanceof PreforkError) {
    if (error.code === 'DATABASE_UNREACHABLE' && error.cause !== undefined && depth < 5) return classify(error.cause, depth + 1);
    return permanent(`prefork error ${error.code}`, error.code);
  }
  const e = error as { code?: unknown; syscall?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined) {
    const errno = transientErrno[code];
    if (errno) return { transient: true, category: 'connection', reason: errno, code };
    if (code === 'ENOENT' && e.syscall === 'connect') {
      return { transient: true, category: 'connection', reason: 'server socket missing', code };
    }
    if (code === 'ENOTFOUND') return permanent('host name does not resolve', code);
    if (isSqlState(code)) return classifySqlState(code);
  }
  const message = typeof e.message === 'string' ? e.message : '';
  const lost = connectionLostMessages[message];
  if (lost) return { transient: true, category: 'connection', reason: lost };
  // Node's happy-eyeballs connect gives an AggregateError of one error per address; wrappers keep a cause.
  if (depth < 5) {
    if (Array.isArray(e.errors) && e.errors.length > 0) return classify(e.errors[e.errors.length - 1], depth + 1);
    if (e.cause !== undefined) return classify(e.cause, depth + 1);
  }
  return permanent(code ? `not a transient error (${code})` : 'not a transient error', code);
}

/** The server's SQLSTATE on an error it sent, if this is one. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && isSqlState(code) ? code : undefined;
}

/** SQLSTATE classes are 00-58, F0, HV, P0, XX: none starts with E, as errno codes (EPERM) do. */
function isSqlState(code: string): boolean {
  return /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code);
}

function classifySqlState(code: string): DatabaseErrorClassification {
  const [category, reason] = sqlStates[code] ?? sqlStateClasses[code.slice(0, 2)] ?? ['permanent', `SQLSTATE ${code}`];
  return { transient: category !== 'permanent', category, reason, code };
}

function permanent(reason: string, code?: string): DatabaseErrorClassification {
  return code === undefined ? { transient: false, category: 'permanent', reason } : { transient: false, category: 'permanent', reason, code };
}

/**
 * A value the server cannot store or convert (SQLSTATE class 22, data exception: a NUL character in jsonb, say)
 * or a limit exceeded (class 54: a jsonb value too large): the same statement fails the same way every time.
 */
export function isDataError(error: unknown): boolean {
  const state = sqlStateOf(error);
  return state !== undefined && (state.startsWith('22') || state.startsWith('54'));
}
