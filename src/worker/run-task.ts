/** One attempt of one task, on its own connection, from start to the message that reports it. */
import type { Logger } from 'pino';
import { taskApplicationName } from '../db/application-name.js';
import { taskSessionSettings } from '../db/session-settings.js';
import { TaskConnection, type ConnectionSlot, type SessionSettings } from '../db/task-connection.js';
import { kysely } from '../db/kysely-module.js';
import { checkedTransactionOptions, withTransaction } from '../db/transaction.js';
import { PreforkError, serializeError } from '../errors.js';
import { addTask } from '../queue/add-task.js';
import { sendOptions, toQueryable } from '../client/queryable-adapter.js';
import { jsonStorageProblem } from '../queue/task-input.js';
import type { TaskEnvelope, WorkerMessage } from '../protocol.js';
import type { TaskContext } from '../task.js';
import type { TaskRegistry } from './task-registry.js';

export interface RunTaskDeps {
  registry: TaskRegistry;
  workerId: number;
  databaseUrl: string;
  schema: string;
  /** The worker's defaults; a task's own statementTimeoutMs, lockTimeoutMs, idleInTransactionTimeoutMs win. */
  session: SessionSettings;
  log: Logger;
  send: (message: WorkerMessage) => void;
  /** A fresh slot of the connection budget for each attempt; none: no budget. */
  connectionSlot?: (() => ConnectionSlot) | undefined;
  /** Aborted when the attempt is over (its hard limit): ends the connection's waits and ctx.transaction's reruns. */
  attemptOver?: { readonly signal: AbortSignal } | undefined;
  /** Told of the attempt's connection when the task first uses it (the worker closes it if the task is failed early). */
  onConnection?: ((connection: TaskConnection) => void) | undefined;
}

/**
 * A task's connection tells the primary its backend pid (for `status`, `inspect`, the connections in use) once it
 * has been open this long: the many tasks that connect, write and finish sooner cost the primary no message
 * (one IPC message in three of such a task's). The primary finds a backend it has no pid for by its name.
 */
export const backendReportDelayMs = 200;

export async function runTask(task: TaskEnvelope, controller: Pick<AbortController, 'signal' | 'abort'>, deps: RunTaskDeps): Promise<void> {
  // ctx.db and ctx.sql are synchronous: the worker loaded kysely before it reported ready, and tasks reach ready
  // workers only.
  // Made on first use: a child logger serialises its bindings when it is made (≈5 µs), and most tasks never log.
  let taskLog: Logger | undefined;
  const log = () => (taskLog ??= deps.log.child({ taskId: task.id, task: task.name, attempt: task.attempt }));
  const definition = deps.registry.get(task.name);
  // Made on first use: a task that never touches the database pays nothing for it.
  let made: TaskConnection | undefined;
  let reportBackend: NodeJS.Timeout | undefined;
  let reported = false;
  /** Set as the attempt settles: its connection is closed then, and none may open after. */
  let settled = false;
  const connection = (): TaskConnection => {
    if (made) return made;
    if (settled) {
      // A first use after the attempt settled (a timer or a promise the task left behind): a connection opened
      // now would never be closed, and would keep a budget slot for good. It fails as a late use of an opened
      // connection does.
      made = new TaskConnection({ connectionString: deps.databaseUrl, applicationName: taskApplicationName(deps.schema, deps.workerId, task.id) });
      void made.close();
      return made;
    }
    made = new TaskConnection({
      ...taskSessionSettings(deps.session, definition),
      connectionString: deps.databaseUrl,
      applicationName: taskApplicationName(deps.schema, deps.workerId, task.id),
      onConnect: (backendPid) => {
        clearTimeout(reportBackend);
        const report = () => {
          reported = true;
          deps.send({ type: 'db_backend', taskId: task.id, backendPid });
        };
        // A reconnect's new pid replaces the one the primary holds at once.
        if (reported) report();
        else reportBackend = setTimeout(report, backendReportDelayMs);
      },
      // Not the task's signal: after a cancel or a soft limit the task may still connect to clean up.
      signal: deps.attemptOver?.signal,
      slot: deps.connectionSlot?.(),
      onConnectRetry: (e) =>
        log().warn({ event: 'db_connect_retry', connectAttempt: e.attempt, delayMs: e.delayMs, reason: e.reason, code: e.code, error: e.message }, 'connecting failed; retrying'),
    });
    deps.onConnection?.(made);
    return made;
  };
  const progress = new ProgressReporter((value) => deps.send({ type: 'progress', taskId: task.id, progress: value }));
  let outcome: WorkerMessage;
  try {
    if (!definition) {
      throw new PreforkError('UNKNOWN_TASK', `this worker has no task named "${task.name}"`);
    }
    const ctx: TaskContext = {
      taskId: task.id,
      name: task.name,
      attempt: task.attempt,
      maxAttempts: task.maxAttempts,
      get signal() {
        return controller.signal;
      },
      get log() {
        return log();
      },
      get db() {
        return connection().db;
      },
      sql: kysely().sql,
      connection: () => connection().client(),
      progress: (value) => progress.report(value),
      send: async (name, payload, options) => {
        const { db, addOptions } = sendOptions(options); // checked as Client.send's
        const added = await addTask(db ? toQueryable(db) : await connection().client(), deps.schema, name, payload, addOptions);
        return added.id;
      },
      transaction: async (fn, given) => {
        const options = checkedTransactionOptions(given);
        return withTransaction(connection().db, fn, {
          ...options,
          signal: options.signal ?? deps.attemptOver?.signal,
          onRetry: (e) => {
            log().warn({ event: 'db_transaction_retry', transactionAttempt: e.attempt, delayMs: e.delayMs, reason: e.reason, code: e.code }, 'transaction failed; running it again');
            options.onRetry?.(e);
          },
        });
      },
      workerId: deps.workerId,
    };
    const value = await definition.run(task.payload as never, ctx);
    const { result, size } = toJsonValue(value);
    // Told only of results that weigh (the settler bounds its statements by it); a small one adds nothing to IPC.
    outcome = size >= 1024 ? { type: 'task_succeeded', taskId: task.id, result, resultSize: size } : { type: 'task_succeeded', taskId: task.id, result };
  } catch (error) {
    outcome = { type: 'task_failed', taskId: task.id, error: serializeError(abortReason(error, controller.signal) ?? error) };
  } finally {
    // The connection closes before the outcome is reported: when a sender sees the result, the task's
    // backend is already gone.
    clearTimeout(reportBackend);
    settled = true;
    await made?.close();
  }
  // The last word on progress goes before the outcome.
  progress.end();
  deps.send(outcome);
}

/**
 * Node's promise APIs given ctx.signal (timers/promises, events.once, stream.pipeline…) reject with an AbortError
 * that keeps the signal's reason only as its `cause`. A task that lets one through failed for that reason: it is
 * recorded as the reason itself (SOFT_TIMEOUT, CANCELLED, SHUTDOWN, with its message), not as "The operation was
 * aborted".
 */
function abortReason(error: unknown, signal: AbortSignal): unknown {
  if (!signal.aborted || !(error instanceof Error) || error.name !== 'AbortError') return undefined;
  return error.cause !== undefined && error.cause === signal.reason ? signal.reason : undefined;
}

/** The most progress text a task may report at once. */
const maxProgressLength = 64 * 1024;
/** A task's progress goes to the primary at most this often. */
const progressIntervalMs = 100;

/**
 * ctx.progress: checked and copied at the call, sent at most once per `progressIntervalMs` (the latest value; one
 * waiting is sent when the interval ends, or before the outcome).
 */
class ProgressReporter {
  #sentAt = -Infinity;
  #pending: { value: unknown } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly send: (value: unknown) => void) {}

  report(value: unknown): void {
    this.#pending = { value: progressValue(value) };
    const wait = this.#sentAt + progressIntervalMs - performance.now();
    if (wait <= 0) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), wait);
  }

  end(): void {
    this.#flush();
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#pending) return;
    this.send(this.#pending.value);
    this.#pending = undefined;
    this.#sentAt = performance.now();
  }
}

function progressValue(value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (error) {
    throw new PreforkError('INVALID_PROGRESS', `ctx.progress: the value cannot be stored as JSON: ${(error as Error).message}`);
  }
  if (text === undefined) throw new PreforkError('INVALID_PROGRESS', 'ctx.progress: the value cannot be stored as JSON (a function or a symbol)');
  if (text.length > maxProgressLength) throw new PreforkError('INVALID_PROGRESS', `ctx.progress: the value is ${text.length} characters as JSON; at most ${maxProgressLength}`);
  const problem = jsonStorageProblem(text);
  if (problem) throw new PreforkError('INVALID_PROGRESS', `ctx.progress: the value ${problem}`);
  return JSON.parse(text);
}

/**
 * Results travel as JSON: undefined becomes null, and what JSON cannot carry, or PostgreSQL cannot store (a NUL
 * character, a lone surrogate: task-input.ts), fails the task clearly.
 */
function toJsonValue(value: unknown): { result: unknown; size: number } {
  if (value === undefined) return { result: null, size: 4 };
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new PreforkError('RESULT_NOT_SERIALIZABLE', `the task's result cannot be stored as JSON: ${(error as Error).message}`);
  }
  // undefined: a function or a symbol, stored as null like an undefined result.
  if (text === undefined) return { result: null, size: 4 };
  const problem = jsonStorageProblem(text);
  if (problem) throw new PreforkError('RESULT_NOT_SERIALIZABLE', `the task's result ${problem}`);
  return { result: value, size: text.length };
}
