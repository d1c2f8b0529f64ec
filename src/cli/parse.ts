/** Option parsers for commander: each failure is one exact line, exit code 2. */
import { InvalidArgumentError } from 'commander';
import { logLevels } from '../logger.js';
import { taskIdProblem } from '../queue/task-input.js';

export function integer(name: string, min: number, max: number): ((value: string) => number) & { range: string } {
  const parse = (value: string) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  // Shown in --help (main.ts), so that the range is known before a value is refused.
  return Object.assign(parse, { range: `${min} to ${max}` });
}

export function logLevel(value: string): string {
  if (!logLevels.includes(value as never)) throw new InvalidArgumentError(`must be one of ${logLevels.join(', ')}`);
  return value;
}

export function parsePayload(text: string): unknown {
  try {
    return parseJsonText(text);
  } catch (error) {
    const message = (error as Error).message;
    throw new InvalidArgumentError(error instanceof SyntaxError ? `the payload is not valid JSON (${message})` : `the payload ${message}`);
  }
}

/**
 * JSON.parse, refusing a number JavaScript cannot hold (1e999 parses as Infinity, which JSON.stringify
 * would then store as null): the value would change on its way to the task. A SyntaxError is JSON that is
 * not valid; a RangeError is valid JSON that JavaScript cannot take as it is, its message a predicate
 * ("contains …", "is nested …") to follow what the text is.
 */
export function parseJsonText(text: string): unknown {
  const inexact = inexactInteger(text);
  if (inexact !== null) {
    throw new RangeError(`contains the integer ${inexact}, beyond what JavaScript holds exactly (2^53); send it as a string`);
  }
  let tooLarge: string | undefined;
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) tooLarge ??= key;
      return v;
    });
  } catch (error) {
    if (error instanceof SyntaxError) throw error;
    // The stack ran out: JSON.parse's reviver recurses, a level of the stack for each level of nesting.
    throw new RangeError('is nested too deeply for JavaScript to read; nest its arrays and objects less deeply', { cause: error });
  }
  if (tooLarge !== undefined) {
    throw new RangeError(`${tooLarge === '' ? 'is a number' : `contains a number at "${tooLarge}"`} too large to represent (beyond ±1.8e308); send it as a string`);
  }
  return value;
}

export function queueList(value: string): string[] {
  const names = value.split(',').map((q) => q.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('give at least one queue name');
  return names;
}

/** A comma-separated list of task states, each one of `allowed`. */
export function stateList(name: string, allowed: readonly string[]): (value: string) => string[] {
  return (value) => {
    const states = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
    if (states.length === 0) throw new InvalidArgumentError(`${name}: give at least one of ${allowed.join(', ')}`);
    for (const s of states) if (!allowed.includes(s)) throw new InvalidArgumentError(`${name}: unknown state "${s}" (one of ${allowed.join(', ')})`);
    return states;
  };
}

/** A non-empty string without NUL (what a task name or queue can be). */
export function nonEmpty(name: string): (value: string) => string {
  return (value) => {
    if (value.length === 0 || value.includes('\u0000')) throw new InvalidArgumentError(`${name} must be a non-empty string`);
    return value;
  };
}

/** A task id given as an argument or a flag: a positive whole number up to 2^63 − 1 (exit 2 otherwise). */
export function taskId(value: string): string {
  const problem = taskIdProblem(value);
  if (problem) throw new InvalidArgumentError(`invalid task id "${value}": ${problem}`);
  return value;
}

export function taskIds(values: readonly string[]): string[] {
  return values.map(taskId);
}

/**
 * The first integer literal of a JSON text (outside its strings) that JavaScript would round (beyond 2^53,
 * where an id of 18 digits loses its last ones), or null. JSON.parse gives no source text on Node 20.
 */
function inexactInteger(text: string): string | null {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      continue;
    }
    if (c !== '-' && (c < '0' || c > '9')) continue;
    const token = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400))?.[0] ?? c;
    i += token.length - 1;
    if (/^-?\d{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) return token;
  }
  return null;
}
