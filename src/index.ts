/** The public API of prefork. Everything not exported here is internal. */
export { defineTask, type TaskContext, type TaskHandler, type TaskDefinition, type TaskOptions, type BackoffOptions, type TaskList } from './task.js';
export { connectionCache } from './db/connection-cache.js';
export { onWorkerProcessInit, type WorkerStartContext, type WorkerStartHook } from './worker/startup-hooks.js';
export { NonRetryableError, PreforkError, type SerializedError } from './errors.js';
export { redactConnectionString } from './db/connection-string.js';
export { Supervisor } from './primary/supervisor.js';
export { supervisorDefaults, type SupervisorOptions } from './primary/supervisor-options.js';
export type { TaskView } from './queue/task-view.js';
export type { TaskState } from './queue/task-row.js';
