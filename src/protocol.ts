/**
 * The IPC protocol between the primary and its workers: one discriminated union each way.
 * Messages are plain JSON (cluster's default serialization); errors travel as SerializedError.
 */
import type { SerializedError } from './errors.js';
import type { BackoffOptions, RateLimit, TaskSchedule } from './task.js';

/** What the worker needs to run one attempt of a task. */
export interface TaskEnvelope {
  id: string;
  name: string;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
}

/** What a worker tells the primary about each task it can run. */
export interface TaskInfo {
  name: string;
  maxAttempts?: number | undefined;
  backoff?: BackoffOptions | undefined;
  softTimeoutMs?: number | undefined;
  hardTimeoutMs?: number | undefined;
  /** The task's schedule (a cron expression, its time zone (null: UTC), and the payload of each tick). */
  schedule?: TaskSchedule | undefined;
  /** Limits across all supervisors (defineTask's maxRunning and rateLimit). */
  maxRunning?: number | undefined;
  rateLimit?: RateLimit | undefined;
}

// ---- primary -> worker ----------------------------------------------------------------------------------
/**
 * Tasks for the worker, run in this order, `concurrency` at a time. Beyond its free slots a worker is sent
 * only a short queue, and only while its tasks take well under a millisecond or two (see WorkerHandle).
 */
export interface RunMessage {
  type: 'run';
  tasks: TaskEnvelope[];
}
/** Why a task's signal aborted: cancelled, its soft or hard time limit passed, or the supervisor stops past its shutdown timeout. */
export type AbortCode = 'CANCELLED' | 'SOFT_TIMEOUT' | 'HARD_TIMEOUT' | 'SHUTDOWN';
/** Abort the task's signal (cancel, soft time limit, shutdown deadline); a task still queued is dropped and reported failed. */
export interface AbortMessage {
  type: 'abort';
  taskId: string;
  reason: string;
  /** Why, for code: the `code` of `ctx.signal.reason`. */
  code: AbortCode;
  /**
   * The attempt is over (its hard limit passed): a wait for a connection or a connect ends too. Otherwise the task
   * may still use its connection to clean up before it returns.
   */
  final?: boolean;
}
/** Give back the tasks queued but not started (answered by `unqueued`): they go to another worker. */
export interface UnqueueMessage {
  type: 'unqueue';
}
/** Give back the queued tasks, finish the running ones, release resources and exit. */
export interface ShutdownMessage {
  type: 'shutdown';
}
/** A connection slot of the global budget is the worker's; the task may open its connection. */
export interface SlotGrantedMessage {
  type: 'slot_granted';
  requestId: number;
}
/**
 * The connection budget starts or stops needing slots (the worker count changed), or, in answer to `budget_query`,
 * whether it does at all (the worker was forked before the primary knew).
 */
export interface BudgetMessage {
  type: 'budget';
  enforced: boolean;
  /** With the answer to `budget_query`: the URL task connections use (a local server's Unix socket, say). */
  databaseUrl?: string;
}
export type PrimaryMessage = RunMessage | AbortMessage | UnqueueMessage | ShutdownMessage | SlotGrantedMessage | BudgetMessage;

// ---- worker -> primary ----------------------------------------------------------------------------------
/** Start-up hooks ran and the task module loaded: the worker may receive tasks. */
export interface ReadyMessage {
  type: 'ready';
  pid: number;
  tasks: TaskInfo[];
}
/** The worker could not start (task module failed to load, a start-up hook threw or timed out). */
export interface StartupFailedMessage {
  type: 'startup_failed';
  error: SerializedError;
}
/** The task opened its database connection; the primary needs the backend pid to cancel its query. */
export interface DbBackendMessage {
  type: 'db_backend';
  taskId: string;
  backendPid: number | null;
}
export interface TaskSucceededMessage {
  type: 'task_succeeded';
  taskId: string;
  result: unknown;
  /** The length of the result's JSON text, for results of 1,024 characters or more: bounds outcome statements. */
  resultSize?: number;
}
/** What the task said of its progress (`ctx.progress`): the latest value, at most one message per 100 ms. */
export interface ProgressMessage {
  type: 'progress';
  taskId: string;
  progress: unknown;
}
export interface TaskFailedMessage {
  type: 'task_failed';
  taskId: string;
  error: SerializedError;
}
/** Tasks the worker had queued and will not start (after `unqueue` or `shutdown`). */
export interface UnqueuedMessage {
  type: 'unqueued';
  taskIds: string[];
}
/**
 * Several messages in one IPC write: what a worker says within one turn of its event loop travels together
 * (each write to the IPC pipe is a system call; short tasks finish many per turn). Never nested.
 */
export interface BatchMessage {
  type: 'batch';
  messages: WorkerMessage[];
}
export interface HeartbeatMessage {
  type: 'heartbeat';
  rss: number;
  loopLagMs: number;
}
/** A worker forked before the primary knew its connection budget asks whether it must take slots (answer: `budget`). */
export interface BudgetQueryMessage {
  type: 'budget_query';
}
/** Asks for a slot of the supervisor's connection budget before opening a connection. */
export interface SlotAcquireMessage {
  type: 'slot_acquire';
  requestId: number;
}
/** Gives a slot back (or withdraws a request still waiting). */
export interface SlotReleaseMessage {
  type: 'slot_release';
  requestId: number;
}
/**
 * The worker wants to be replaced: code of one of its tasks threw where nothing could catch it (an uncaught
 * exception, an unhandled rejection). It runs no new task; the ones running finish.
 */
export interface RetireMessage {
  type: 'retire';
  reason: string;
}
/** The worker's start-up check could not reach the database; it keeps trying. */
export interface DatabaseWaitMessage {
  type: 'database_wait';
  error: SerializedError;
}
export type WorkerMessage =
  | BudgetQueryMessage
  | SlotAcquireMessage
  | SlotReleaseMessage
  | DatabaseWaitMessage
  | ReadyMessage
  | StartupFailedMessage
  | DbBackendMessage
  | TaskSucceededMessage
  | TaskFailedMessage
  | ProgressMessage
  | UnqueuedMessage
  | BatchMessage
  | HeartbeatMessage
  | RetireMessage;

const workerMessageTypes: ReadonlySet<string> = new Set<WorkerMessage['type']>([
  'budget_query',
  'slot_acquire',
  'slot_release',
  'database_wait',
  'ready',
  'startup_failed',
  'db_backend',
  'task_succeeded',
  'task_failed',
  'progress',
  'unqueued',
  'batch',
  'heartbeat',
  'retire',
]);
const primaryMessageTypes: ReadonlySet<string> = new Set<PrimaryMessage['type']>(['run', 'abort', 'unqueue', 'shutdown', 'slot_granted', 'budget']);

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return isTyped(value) && workerMessageTypes.has(value.type);
}

export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return isTyped(value) && primaryMessageTypes.has(value.type);
}

function isTyped(value: unknown): value is { type: string } {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

/** A handler table keyed by message type: dispatch without an if-chain on strings. */
export type MessageHandlers<M extends { type: string }> = {
  [K in M['type']]: (message: Extract<M, { type: K }>) => void;
};

export function dispatchMessage<M extends { type: string }>(handlers: MessageHandlers<M>, message: M): void {
  const handler = handlers[message.type as M['type']] as (m: M) => void;
  handler(message);
}
