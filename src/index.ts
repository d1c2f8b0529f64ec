/** The public API of prefork. Everything not exported here is internal. */
import './db/load-pg.js'; // first, before anything imports pg
export { defineTask, type TaskContext, type TaskHandler, type TaskDefinition, type TaskOptions, type BackoffOptions, type RateLimit, type TaskList } from './task.js';
export { connectionCache } from './db/connection-cache.js';
export { onWorkerProcessInit, type WorkerStartContext, type WorkerStartHook } from './worker/startup-hooks.js';
export { CommitOutcomeUnknownError, NonRetryableError, PreforkError, type SerializedError } from './errors.js';
export {
  classifyDatabaseError,
  isTransientDatabaseError,
  type DatabaseErrorCategory,
  type DatabaseErrorClassification,
} from './db/error-classification.js';
export { withTransaction, type TransactionOptions, type TransactionRetryEvent } from './db/transaction.js';
export type { SessionSettings, TaskSessionOverrides } from './db/session-settings.js';
export type { ConnectionSlot } from './db/task-connection.js';
export { redactConnectionString } from './db/connection-string.js';
export { Supervisor } from './primary/supervisor.js';
export { supervisorDefaults, type SupervisorOptions } from './primary/supervisor-options.js';
export type { TaskView } from './queue/task-view.js';
export type { TaskState } from './queue/task-row.js';
export { Client, type ClientOptions, type RunOptions, type SendOptions, type PayloadOf, type ResultOf, type TypedTaskView } from './client/client.js';
export type { AddTaskOptions } from './queue/add-task.js';
export type { NewTask } from './queue/add-tasks.js';
export type { CancelOutcome } from './queue/cancel-task.js';
export type { RetryOutcome } from './queue/retry-tasks.js';
export type { PauseOutcome, ResumeOutcome } from './queue/paused-tasks.js';
export type { TaskListFilter } from './queue/list-tasks.js';
