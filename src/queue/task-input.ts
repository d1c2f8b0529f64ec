/**
 * What a task may be made of, checked where it enters (the CLI, the client API, the socket) so that bad input
 * gets a clear error with a code, not a database error or a stack trace.
 *
 * What PostgreSQL can store of a JavaScript value. Its text, and so its jsonb, holds no NUL character, and its
 * jsonb no lone UTF-16 surrogate (half of a pair, as slicing a string through an emoji leaves): a payload or
 * result with either fails the statement that writes it (SQLSTATE 22P05 "unsupported Unicode escape sequence",
 * 22P02 "invalid input syntax for type json"), and a task name or queue with a NUL fails as an invalid byte
 * sequence (22021). So such values are refused where they enter, with a clear error, instead of by the database.
 */
import { isDataError } from '../db/error-classification.js';
import { PreforkError } from '../errors.js';
import { taskStates } from './task-row.js';

/**
 * In JSON text as JSON.stringify writes it: `\u0000`, or a surrogate escape (JSON.stringify writes a pair as
 * the character itself and escapes only a lone half), after an even number of backslashes (`\\u0000` is a
 * backslash and "u0000").
 */
const unstorableEscape = /(?:^|[^\\])(?:\\\\)*\\u(0000|d[89a-f][0-9a-f]{2})/;

/**
 * Why PostgreSQL cannot store the JSON text JSON.stringify made of a value, or null when it can. The common
 * case costs one `includes`.
 */
export function jsonStorageProblem(json: string): string | null {
  if (!json.includes('\\u')) return null;
  const m = unstorableEscape.exec(json);
  if (!m) return null;
  return m[1] === '0000'
    ? 'contains a NUL character (\\u0000), which PostgreSQL cannot store'
    : `contains a lone UTF-16 surrogate (\\u${m[1]}, half of a pair), which PostgreSQL cannot store`;
}

/**
 * An insert of tasks whose values the database still refuses (a payload past jsonb's 256 MB, say): bad input,
 * INVALID_PAYLOAD (exit 2), as the checks before it would have said, for the CLI and the client alike.
 */
export async function storing<T>(insert: Promise<T>): Promise<T> {
  try {
    return await insert;
  } catch (error) {
    if (isDataError(error)) throw new PreforkError('INVALID_PAYLOAD', `the database cannot store it: ${(error as Error).message}`, { cause: error, exitCode: 2 });
    throw error;
  }
}

/** A task's payload: as given, `null` included; `{}` when none was given. */
export function payloadOrEmpty(payload: unknown): unknown {
  return payload === undefined ? {} : payload;
}

/** A payload as the JSON text that goes into the database; INVALID_PAYLOAD (exit 2) for one it cannot store. */
export function payloadJson(payload: unknown, label = 'the payload'): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(payloadOrEmpty(payload));
  } catch (error) {
    // A BigInt, a cycle, a toJSON that throws.
    throw new PreforkError('INVALID_PAYLOAD', `${label} is not JSON-serialisable: ${(error as Error).message}`, { exitCode: 2, cause: error });
  }
  if (json === undefined) throw new PreforkError('INVALID_PAYLOAD', `${label} is not JSON-serialisable`, { exitCode: 2 });
  const problem = jsonStorageProblem(json);
  if (problem) throw new PreforkError('INVALID_PAYLOAD', `${label} ${problem}`, { exitCode: 2 });
  return json;
}

/** Refuses a task name the table cannot hold: 1 to 200 characters (INVALID_TASK_NAME, exit 2). */
export function assertTaskName(name: unknown, what = 'the task name'): void {
  if (typeof name !== 'string' || name.length < 1 || name.length > 200) {
    const got = typeof name === 'string' ? `${name.length} characters` : typeof name;
    throw new PreforkError('INVALID_TASK_NAME', `${what} must be a string of 1 to 200 characters (got ${got})`, { exitCode: 2 });
  }
}

/**
 * A task being added, checked as one wherever it enters (the CLI, the client API, sendMany): its payload, name
 * and options. Returns the payload as the JSON text that goes into the database. `label` prefixes each message
 * (`task 3: ` in a batch).
 */
export function checkNewTask(name: unknown, payload: unknown, options: unknown = {}, label = ''): string {
  const json = payloadJson(payload, `${label}the payload`);
  assertTaskName(name, `${label}the task name`);
  assertAddOptions(options, label);
  const o = (options ?? {}) as { queue?: unknown; key?: unknown };
  assertNoNul(name, `${label}the task name`);
  assertNoNul(o.queue, `${label}the queue`);
  assertNoNul(o.key, `${label}the key`);
  return json;
}

/** Refuses a task name, queue or key with a NUL character (INVALID_OPTION, exit 2). */
export function assertNoNul(value: unknown, what: string): void {
  if (typeof value === 'string' && value.includes('\0')) {
    throw new PreforkError('INVALID_OPTION', `${what} contains a NUL character (\\u0000), which PostgreSQL cannot store`, { exitCode: 2 });
  }
}

/**
 * The options of a task being added (INVALID_OPTION, exit 2): what the columns hold. The CLI's flags are narrower
 * (priority 0–1000, maxAttempts up to 1,000); the API takes any 32-bit priority, negative for below the default.
 */
export const addOptionKeys = ['queue', 'priority', 'runAt', 'delayMs', 'maxAttempts', 'key'] as const;

/** The earliest time PostgreSQL's timestamptz holds (4714 BC); JavaScript's latest Date is within its range. */
const earliestTimestampMs = -210_866_803_200_000;

/**
 * An options argument: none (undefined, null), or an object with only `allowed` keys (INVALID_OPTION): a typo
 * (`delay` for `delayMs`) is refused rather than ignored.
 */
export function assertOptionKeys(options: unknown, allowed: readonly string[], label = ''): void {
  if (options === undefined || options === null) return;
  if (typeof options !== 'object' || Array.isArray(options)) throw invalidOption(`${label}options must be an object (got ${show(options)})`);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalidOption(`${label}unknown option ${JSON.stringify(key)} (options: ${allowed.join(', ')})`);
  }
}

export function assertAddOptions(options: unknown, label = ''): void {
  assertOptionKeys(options, addOptionKeys, label);
  if (options === undefined || options === null) return;
  // null counts as not given, as it does where the options are used (`??`).
  const o = options as Record<string, unknown>;
  const given = (key: string) => o[key] !== undefined && o[key] !== null;
  wholeNumber(o.priority, 'priority', -2_147_483_648, 2_147_483_647, label);
  wholeNumber(o.maxAttempts, 'maxAttempts', 1, 1_000_000, label);
  const { delayMs, runAt } = o;
  if (given('delayMs') && !(typeof delayMs === 'number' && Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= 2_147_483_647)) {
    throw invalidOption(`${label}delayMs must be a number of milliseconds from 0 to 2147483647 (got ${show(delayMs)})`);
  }
  if (given('runAt') && !(runAt instanceof Date && Number.isFinite(runAt.getTime()) && runAt.getTime() >= earliestTimestampMs)) {
    throw invalidOption(`${label}runAt must be a valid Date from 4713 BC on (got ${runAt instanceof Date && Number.isFinite(runAt.getTime()) ? runAt.toISOString() : show(runAt)})`);
  }
  // One would silently win over the other.
  if (given('runAt') && given('delayMs')) throw invalidOption(`${label}give runAt or delayMs, not both`);
  // Both go into the unique index of keyed tasks, whose entries PostgreSQL limits to about 2.7 kB.
  for (const [key, maxBytes] of [['queue', 800], ['key', 1_000]] as const) {
    const v = o[key];
    if (given(key) && !(typeof v === 'string' && v.length > 0)) throw invalidOption(`${label}${key} must be a non-empty string (got ${show(v)})`);
    if (typeof v === 'string' && Buffer.byteLength(v) > maxBytes) throw invalidOption(`${label}${key} must be at most ${maxBytes} bytes in UTF-8 (got ${Buffer.byteLength(v)})`);
  }
}

/** Whether `id` is a task id as the database has them: a positive whole number up to 2^63 − 1, as a string. */
export function isTaskId(id: unknown): id is string {
  return typeof id === 'string' && /^[1-9]\d{0,18}$/.test(id) && BigInt(id) <= 9_223_372_036_854_775_807n;
}

/**
 * Why `id` is not a task id, or null: a whole number past bigint's range is one, just too large; anything else is
 * `notAnId`.
 */
export function taskIdProblem(id: unknown, notAnId = 'a task id is a positive whole number'): string | null {
  if (isTaskId(id)) return null;
  return typeof id === 'string' && /^[1-9]\d*$/.test(id) ? 'it is out of range (task ids go up to 9223372036854775807)' : notAnId;
}

/** A task id, or INVALID_TASK_ID. */
export function assertTaskId(id: unknown): void {
  const problem = taskIdProblem(id, 'a task id is a positive whole number, as a string');
  if (problem) throw new PreforkError('INVALID_TASK_ID', `invalid task id ${show(id)}: ${problem}`, { exitCode: 2 });
}

/**
 * A wait's `timeoutMs`: none, or 0 to 2^31 − 1 ms (INVALID_OPTION). A Node timer holds no more: a longer one fires
 * after 1 ms, which would end the wait at once. Without `timeoutMs` the wait has no limit.
 */
/** A call's `signal`: none, or an AbortSignal (INVALID_OPTION). */
export function assertSignal(signal: unknown): void {
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) throw invalidOption(`signal must be an AbortSignal (got ${show(signal)})`);
}

export function assertTimeout(timeoutMs: unknown): void {
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs <= 2_147_483_647)) {
    throw invalidOption(`timeoutMs must be a number of milliseconds from 0 to 2147483647, or left out to wait without limit (got ${show(timeoutMs)})`);
  }
}

/** How many more attempts a retry gives: 1 to 1,000,000 (INVALID_OPTION). */
export function assertRetryAttempts(attempts: unknown): void {
  if (attempts === undefined || attempts === null) throw invalidOption(`attempts must be a whole number from 1 to 1000000 (got ${show(attempts)})`);
  wholeNumber(attempts, 'attempts', 1, 1_000_000, '');
}

/** Why a task is paused, as `prefork pause --reason` takes it: none, or a non-empty string PostgreSQL can store. */
export function assertPauseReason(reason: unknown): void {
  if (reason !== undefined && !(typeof reason === 'string' && reason.length > 0 && !reason.includes('\0'))) {
    throw invalidOption(`reason must be a non-empty string without a NUL character (got ${show(reason)})`);
  }
}

/** A task list's filter: known states, non-empty name and queue, a task id to page before, a limit of 1 to 10,000. */
export function assertListFilter(filter: unknown): void {
  if (filter === undefined || filter === null) return;
  if (typeof filter !== 'object') throw invalidOption('the filter must be an object');
  assertOptionKeys(filter, ['states', 'name', 'queue', 'before', 'limit']);
  const f = filter as Record<string, unknown>;
  if (f.states !== undefined) {
    if (!Array.isArray(f.states)) throw invalidOption(`states must be an array of task states (got ${show(f.states)})`);
    for (const s of f.states) {
      if (!(taskStates as readonly unknown[]).includes(s)) throw invalidOption(`unknown state ${show(s)} (states: ${taskStates.join(', ')})`);
    }
  }
  for (const key of ['name', 'queue'] as const) {
    const v = f[key];
    if (v !== undefined && !(typeof v === 'string' && v.length > 0)) throw invalidOption(`${key} must be a non-empty string (got ${show(v)})`);
    assertNoNul(v, key);
  }
  if (f.before !== undefined) assertTaskId(f.before);
  wholeNumber(f.limit, 'limit', 1, 10_000, '');
}

/** A whole number from `min` to `max`, or not given (undefined, null): else INVALID_OPTION naming the range. */
export function wholeNumber(v: unknown, name: string, min: number, max: number, label: string): void {
  if (v === undefined || v === null) return;
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
    throw invalidOption(`${label}${name} must be a whole number from ${min} to ${max} (got ${show(v)})`);
  }
}

function invalidOption(message: string): PreforkError {
  return new PreforkError('INVALID_OPTION', message, { exitCode: 2 });
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Date) return 'an invalid Date';
  if (typeof v === 'bigint') return `${v}n`;
  return typeof v === 'object' && v !== null ? typeof v : String(v);
}
