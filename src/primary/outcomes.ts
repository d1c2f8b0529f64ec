/**
 * What an attempt's end means for its task: succeeded; back to the queue after a backoff; or final as failed,
 * timed out or cancelled. Decided here, recorded by the settler, and announced for metrics.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { SerializedError } from '../errors.js';
import type { TaskInfo } from '../protocol.js';
import { backoffDelay } from './retry-policy.js';
import type { Settlement } from '../queue/settle-tasks.js';
import type { Settler } from './settler.js';
import type { InFlightTask, WorkerHandle } from './worker-handle.js';

export type Outcome = 'succeeded' | 'retried' | 'failed' | 'timed_out' | 'cancelled';

export interface TaskFinished {
  name: string;
  outcome: Outcome;
  attempt: number;
  /** From the hand-over to the worker to the outcome. */
  durationMs: number;
  /** Set when the worker died under the task. */
  crashed: boolean;
}

export const cancelledError: SerializedError = { name: 'CancelledError', code: 'CANCELLED', message: 'the task was cancelled' };

export class Outcomes extends EventEmitter<{ finished: [TaskFinished] }> {
  constructor(
    private readonly settler: Settler,
    private readonly taskInfo: ReadonlyMap<string, TaskInfo>,
    private readonly defaultHardTimeoutMs: number | undefined,
    private readonly log: Logger,
    /** DirectSubmissions.waitsOnSocket: the task's sender hears of its outcome on the socket (a final one is then `quiet`). */
    private readonly waitsOnSocket: (taskId: string) => boolean = () => false,
  ) {
    super();
  }

  /** To the settler; a final outcome whose sender hears of it on the socket goes without a `done` NOTIFY. */
  #record(s: Settlement, ranMs?: number): void {
    if (s.state !== 'queued' && this.waitsOnSocket(s.id)) s.quiet = true;
    this.settler.add(s, ranMs);
  }

  succeeded(f: InFlightTask, handle: WorkerHandle, result: unknown, resultSize?: number): void {
    // Past its hard limit the attempt is over, whatever the task returns after (it caught its query's cancel).
    if (f.timedOut) return this.#fail(f, handle, this.#timeoutError(f), this.#retryDelay(f), false);
    this.#record({ id: f.task.id, name: f.task.name, state: 'succeeded', result, resultSize, workerPid: handle.pid, progress: f.progress, startedAfterClaimMs: lateStart(f) }, Date.now() - f.startedAt);
    this.#announce(f, 'succeeded', false);
  }

  /** The handler threw or rejected (or gave up after its time limit or a cancel). */
  failed(f: InFlightTask, handle: WorkerHandle, error: SerializedError): void {
    this.#fail(f, handle, f.timedOut ? this.#timeoutError(f) : error, this.#retryDelay(f), false);
  }

  /** The worker died under the task: redelivered at once, the attempt counted. */
  crashed(f: InFlightTask, handle: WorkerHandle, exit: { code: number | null; signal: string | null }): void {
    if (f.timedOut) return this.#fail(f, handle, this.#timeoutError(f), this.#retryDelay(f), true);
    const error: SerializedError = {
      name: 'WorkerCrashed',
      code: 'WORKER_CRASHED',
      message: `worker ${handle.id} (pid ${handle.pid}) exited ${exit.signal ? `on ${exit.signal}` : `with code ${exit.code}`} while running the task`,
    };
    this.#fail(f, handle, error, 0, true);
  }

  /** Cancelled while it waited in the primary's buffer: it never reached a worker. */
  cancelledBeforeStart(task: { id: string; name: string }): void {
    this.#record({ id: task.id, name: task.name, state: 'cancelled', error: cancelledError });
  }

  #fail(f: InFlightTask, handle: WorkerHandle, error: SerializedError, delayMs: number, crashed: boolean): void {
    const t = f.task;
    if (f.cancelled) {
      this.log.info({ event: 'task_cancelled', taskId: t.id, task: t.name, attempt: t.attempt, workerPid: handle.pid }, 'task cancelled');
      this.#record({ id: t.id, name: t.name, state: 'cancelled', error: cancelledError, workerPid: handle.pid, progress: f.progress, startedAfterClaimMs: lateStart(f) });
      return this.#announce(f, 'cancelled', crashed);
    }
    const retry = error.retryable !== false && t.attempt < t.maxAttempts;
    const final = f.timedOut ? 'timed_out' : 'failed';
    this.log[retry ? 'info' : 'warn'](
      {
        event: retry ? 'task_retry_scheduled' : `task_${final}`,
        taskId: t.id,
        task: t.name,
        attempt: t.attempt,
        maxAttempts: t.maxAttempts,
        workerPid: handle.pid,
        retryInMs: retry ? delayMs : undefined,
        error: { name: error.name, message: error.message, code: error.code },
      },
      retry ? 'task failed; retry scheduled' : `task ${final.replace('_', ' ')}`,
    );
    this.#record({ id: t.id, name: t.name, state: retry ? 'queued' : final, error, delayMs, workerPid: handle.pid, progress: f.progress, startedAfterClaimMs: lateStart(f) });
    this.#announce(f, retry ? 'retried' : final, crashed);
  }

  #retryDelay(f: InFlightTask): number {
    return backoffDelay(this.taskInfo.get(f.task.name)?.backoff, f.task.attempt);
  }

  #timeoutError(f: InFlightTask): SerializedError {
    const limit = this.taskInfo.get(f.task.name)?.hardTimeoutMs ?? this.defaultHardTimeoutMs;
    return { name: 'TimeoutError', code: 'TIMED_OUT', message: `the task passed its hard time limit of ${limit} ms` };
  }

  #announce(f: InFlightTask, outcome: Outcome, crashed: boolean): void {
    this.emit('finished', { name: f.task.name, outcome, attempt: f.task.attempt, durationMs: Date.now() - f.startedAt, crashed });
  }
}

/** A start this long after the claim is recorded with the outcome (a task claimed ahead, or a long hand-over). */
const lateStartMs = 50;

/** How long after its claim (the row's started_at) the attempt started, if well after it; otherwise undefined. */
function lateStart(f: InFlightTask): number | undefined {
  if (!f.started || f.task.claimedAt === undefined) return undefined;
  const after = f.startedAt - f.task.claimedAt;
  return after > lateStartMs ? after : undefined;
}
