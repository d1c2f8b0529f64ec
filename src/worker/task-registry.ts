import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PreforkError } from '../errors.js';
import type { TaskInfo } from '../protocol.js';
import { defineTask, isTaskDefinition, scheduleOf, type TaskDefinition, type TaskList } from '../task.js';
import { builtinTasks } from './builtin-tasks.js';

const namePattern = /^[A-Za-z0-9_][A-Za-z0-9_.:\-/]{0,199}$/;

/** The tasks one worker can run: the built-ins plus the task module's default export. */
export class TaskRegistry {
  readonly #tasks = new Map<string, TaskDefinition>();

  constructor() {
    this.add(builtinTasks, 'built-in');
  }

  /** Adds a task list; every entry must be a function or a defineTask(...) definition. */
  add(list: unknown, source: string): void {
    if (typeof list !== 'object' || list === null) {
      throw new PreforkError('INVALID_TASK_MODULE', `${source}: the default export must be an object mapping task names to handlers`);
    }
    for (const [name, value] of Object.entries(list as TaskList)) {
      if (!namePattern.test(name)) throw new PreforkError('INVALID_TASK_MODULE', `${source}: invalid task name "${name}"`);
      if (this.#tasks.has(name) && source !== 'built-in') {
        throw new PreforkError('INVALID_TASK_MODULE', `${source}: task "${name}" is already defined (${name.startsWith('prefork.') ? 'a built-in' : 'twice'})`);
      }
      if (typeof value === 'function') this.#tasks.set(name, defineTask({ run: value as TaskDefinition['run'] }));
      else if (isTaskDefinition(value)) this.#tasks.set(name, value);
      else throw new PreforkError('INVALID_TASK_MODULE', `${source}: task "${name}" must be a function or defineTask({ run })`);
    }
  }

  get(name: string): TaskDefinition | undefined {
    return this.#tasks.get(name);
  }

  info(): TaskInfo[] {
    return [...this.#tasks].map(([name, d]) => ({
      name,
      maxAttempts: d.maxAttempts,
      backoff: d.backoff,
      softTimeoutMs: d.softTimeoutMs,
      hardTimeoutMs: d.hardTimeoutMs,
      schedule: scheduleOf(d),
      maxRunning: d.maxRunning,
      rateLimit: d.rateLimit && { count: d.rateLimit.count, intervalMs: d.rateLimit.intervalMs },
    }));
  }
}

/** Imports the task module and adds its default export. */
export async function loadTaskModule(registry: TaskRegistry, url: string): Promise<void> {
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (error) {
    // A bad defineTask option (or schedule) keeps its code, INVALID_OPTION: the module loaded, its task is wrong.
    const code = error instanceof PreforkError && error.code === 'INVALID_OPTION' ? error.code : 'TASK_MODULE_LOAD_FAILED';
    const why = typeScriptUnsupported(url, error) ?? (error as Error)?.message ?? error;
    throw new PreforkError(code, `could not load the task module ${url}: ${why}${syntaxErrorLocation(url, error)}`, { cause: error });
  }
  if (mod.default === undefined) {
    throw new PreforkError('INVALID_TASK_MODULE', `${url}: no default export (export default { 'task.name': handler })`);
  }
  registry.add(mod.default, url);
}

/**
 * A `.ts` task module on a Node.js that does not strip types (Node 20; Node 22 before 22.18 without
 * --experimental-strip-types): Node says only "Unknown file extension", so say what works instead.
 */
function typeScriptUnsupported(url: string, error: unknown): string | undefined {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !/\.[cm]?ts$/.test(new URL(url).pathname)) return undefined;
  return (
    `Node.js ${process.version} does not run TypeScript: compile the task module to JavaScript, run prefork on ` +
    `Node.js 22.18 or later (it strips the types), or start it with a TypeScript loader (NODE_OPTIONS='--import tsx')`
  );
}

/**
 * Where a syntax error in the task module itself is: Node keeps an ES module's error location out of the error it
 * rejects the import with (only an uncaught one prints it), so `node --check` is asked, once, as the start fails.
 * Empty when the module is not a local file, the error is not a SyntaxError, or the error is in a module it imports.
 */
function syntaxErrorLocation(url: string, error: unknown): string {
  if (!(error instanceof SyntaxError) || !url.startsWith('file:')) return '';
  try {
    const check = spawnSync(process.execPath, ['--check', fileURLToPath(url)], { encoding: 'utf8', timeout: 10_000, env: {} });
    const where = /^(.+:\d+)\n/.exec(check.stderr ?? '');
    return where ? ` (at ${where[1]})` : '';
  } catch {
    return '';
  }
}
