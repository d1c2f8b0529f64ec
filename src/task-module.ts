/**
 * `prefork/task`: what a task module needs (handlers, start-up hooks, errors, transactions), without the
 * supervisor and the client, which a worker then never loads (some 80 modules: 8 % of its start-up CPU here).
 * `prefork` exports all of this too, from the same modules: a hook or cache registered through either is one.
 */
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
export type { AddTaskOptions } from './queue/add-task.js';
