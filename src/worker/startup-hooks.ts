/**
 * Worker start-up hooks: prefork's analogue of Celery's `worker_process_init`. They run in every worker
 * process after the task module is imported and before the worker reports ready. The built-in hook
 * (connection cache reset) always runs first.
 */
import type { Logger } from 'pino';

export interface WorkerStartContext {
  workerId: number;
  pid: number;
  log: Logger;
}

export type WorkerStartHook = (ctx: WorkerStartContext) => void | Promise<void>;

const hooksKey = Symbol.for('prefork.workerStartHooks');
const globals = globalThis as { [hooksKey]?: WorkerStartHook[] };
const hooks: WorkerStartHook[] = (globals[hooksKey] ??= []);

/** Registers a hook to run in each worker process when it starts. Call it at a task module's top level. */
export function onWorkerProcessInit(hook: WorkerStartHook): void {
  if (typeof hook !== 'function') throw new TypeError('onWorkerProcessInit expects a function');
  hooks.push(hook);
}

export function registeredStartHooks(): readonly WorkerStartHook[] {
  return hooks;
}
