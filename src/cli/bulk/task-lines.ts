/**
 * The lines of `send --file`: one JSON object per line, `{"task": "name", "payload": {...}, "options": {...}}`.
 * Every line is checked before anything is sent; a bad line is reported by its number and reason.
 */
import type { NewTask } from '../../queue/add-tasks.js';
import { jsonStorageProblem, payloadOrEmpty } from '../../queue/task-input.js';
import { parseJsonText } from '../parse.js';

export interface TaskLine {
  /** 1-based line number in the file. */
  line: number;
  task: NewTask & { options: NonNullable<NewTask['options']> };
}

export interface BadLine {
  line: number;
  reason: string;
}

/** Options every line gets unless it sets its own (from the command's flags). */
export interface LineDefaults {
  priority?: number | undefined;
  delayMs?: number | undefined;
  queue?: string | undefined;
  maxAttempts?: number | undefined;
}

const fields = new Set(['task', 'payload', 'options']);
const optionChecks: Record<string, (v: unknown) => string | null> = {
  priority: wholeNumber(0, 1000),
  delayMs: wholeNumber(0, 2_147_483_647),
  maxAttempts: wholeNumber(1, 1_000_000),
  queue: (v) => (typeof v === 'string' && v.length > 0 ? null : 'must be a non-empty string'),
};

/** Splits and checks the text; blank lines are skipped. */
export function parseTaskLines(text: string, defaults: LineDefaults = {}): { tasks: TaskLine[]; bad: BadLine[] } {
  const tasks: TaskLine[] = [];
  const bad: BadLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const source = lines[i]!.trim();
    if (source === '') continue;
    const result = parseLine(source, defaults);
    if (typeof result === 'string') bad.push({ line: i + 1, reason: result });
    else tasks.push({ line: i + 1, task: result });
  }
  return { tasks, bad };
}

function parseLine(source: string, defaults: LineDefaults): TaskLine['task'] | string {
  let value: unknown;
  try {
    value = parseJsonText(source);
  } catch (error) {
    const message = (error as Error).message;
    return error instanceof SyntaxError ? `invalid JSON (${message})` : message;
  }
  const problem = jsonStorageProblem(JSON.stringify(value));
  if (problem) return problem;
  if (!isObject(value)) return 'must be a JSON object like {"task": "name", "payload": {...}}';
  for (const key of Object.keys(value)) if (!fields.has(key)) return `unknown field "${key}" (expected task, payload, options)`;
  const { task, payload, options = {} } = value;
  if (typeof task !== 'string' || task.trim() === '') return '"task" must be a non-empty string';
  if (task.length > 200) return '"task" must be at most 200 characters';
  if (!isObject(options)) return '"options" must be an object';
  for (const [key, v] of Object.entries(options)) {
    const check = optionChecks[key];
    if (!check) {
      return key === 'key'
        ? '"options.key" is not supported by send --file (send tasks with a unique key one by one)'
        : `"options.${key}" is not an option (expected priority, delayMs, queue, maxAttempts)`;
    }
    const problem = check(v);
    if (problem) return `"options.${key}" ${problem}`;
  }
  const o = options as LineDefaults;
  return {
    task,
    payload: payloadOrEmpty(payload),
    options: {
      priority: o.priority ?? defaults.priority,
      delayMs: o.delayMs ?? defaults.delayMs,
      queue: o.queue ?? defaults.queue,
      maxAttempts: o.maxAttempts ?? defaults.maxAttempts,
    },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function wholeNumber(min: number, max: number): (v: unknown) => string | null {
  return (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `must be a whole number from ${min} to ${max}`);
}
