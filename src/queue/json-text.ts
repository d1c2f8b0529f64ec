/**
 * What PostgreSQL can store of a JavaScript value. Its text, and so its jsonb, holds no NUL character, and its
 * jsonb no lone UTF-16 surrogate (half of a pair, as slicing a string through an emoji leaves): a payload or
 * result with either fails the statement that writes it (SQLSTATE 22P05 "unsupported Unicode escape sequence",
 * 22P02 "invalid input syntax for type json"), and a task name or queue with a NUL fails as an invalid byte
 * sequence (22021). So such values are refused where they enter, with a clear error, instead of by the database.
 */
import { PreforkError } from '../errors.js';

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

/** A payload as the JSON text that goes into the database; INVALID_PAYLOAD (exit 2) for one it cannot store. */
export function payloadJson(payload: unknown, label = 'the payload'): string {
  const json = JSON.stringify(payload ?? {});
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

/** Refuses a task name, queue or key with a NUL character (INVALID_OPTION, exit 2). */
export function assertStorableText(value: string | null | undefined, what: string): void {
  if (typeof value === 'string' && value.includes('\0')) {
    throw new PreforkError('INVALID_OPTION', `the ${what} contains a NUL character (\\u0000), which PostgreSQL cannot store`, { exitCode: 2 });
  }
}
