/**
 * What PostgreSQL can store of a JavaScript value. Its text, and so its jsonb, holds no NUL character: a payload or
 * result containing "\u0000" fails the statement that writes it (SQLSTATE 22P05, "unsupported Unicode escape
 * sequence"), and a task name or queue with one fails as an invalid byte sequence (22021). So such values are
 * refused where they enter, with a clear error, instead of by the database later.
 */
import { PreforkError } from '../errors.js';

/** A NUL in JSON text: `\u0000` after an even number of backslashes (`\\u0000` is a backslash and "u0000"). */
const escapedNul = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/** Whether JSON text (as JSON.stringify writes it, or a user typed it) holds a NUL character anywhere. */
export function jsonHasNul(json: string): boolean {
  return json.includes('\\u0000') && escapedNul.test(json);
}

export const nulProblem = 'contains a NUL character (\\u0000), which PostgreSQL cannot store';

/** A payload as the JSON text that goes into the database; INVALID_PAYLOAD (exit 2) for one it cannot store. */
export function payloadJson(payload: unknown, label = 'the payload'): string {
  const json = JSON.stringify(payload ?? {});
  if (json === undefined) throw new PreforkError('INVALID_PAYLOAD', `${label} is not JSON-serialisable`, { exitCode: 2 });
  if (jsonHasNul(json)) throw new PreforkError('INVALID_PAYLOAD', `${label} ${nulProblem}`, { exitCode: 2 });
  return json;
}

/** Refuses a task name, queue or key with a NUL character (INVALID_OPTION, exit 2). */
export function assertStorableText(value: string | null | undefined, what: string): void {
  if (typeof value === 'string' && value.includes('\0')) {
    throw new PreforkError('INVALID_OPTION', `the ${what} ${nulProblem}`, { exitCode: 2 });
  }
}

