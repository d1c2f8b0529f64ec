/**
 * The public API of prefork. Everything not exported here is internal. A task module may import
 * `prefork/task` instead (task-module.ts): the same worker-side API without the supervisor and the client.
 */
export * from './task-module.js';
export { Supervisor } from './primary/supervisor.js';
export { supervisorDefaults, type SupervisorOptions } from './primary/supervisor-options.js';
export type { TaskView } from './queue/task-view.js';
export type { TaskState } from './queue/task-row.js';
export { Client, type ClientOptions, type RunOptions, type SendOptions, type PayloadOf, type ResultOf, type TypedTaskView } from './client/client.js';
export type { NewTask } from './queue/add-tasks.js';
export type { CancelOutcome } from './queue/cancel-task.js';
export type { RetryOutcome } from './queue/retry-tasks.js';
export type { PauseOutcome, ResumeOutcome } from './queue/paused-tasks.js';
export type { TaskListFilter } from './queue/list-tasks.js';
