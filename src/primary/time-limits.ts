/**
 * Time limits, enforced by the primary on its own clock, whatever the worker's event loop is doing.
 * Soft: the task's signal aborts. Hard: the worker's replacement is forked at once (as Celery replaces a worker
 * at a hard limit), then its query is cancelled, then its backend terminated, then the worker killed if the task
 * still runs. The old worker takes no new task; if the task stopped, it leaves once the replacement is ready.
 */
import type { Logger } from 'pino';
import type { TaskInfo } from '../protocol.js';
import type { InFlightTask, WorkerHandle } from './worker-handle.js';

export interface TimeLimitDefaults {
  softTimeoutMs?: number | undefined;
  hardTimeoutMs?: number | undefined;
}

export interface TimeLimitActions {
  /** `final`: the attempt is over (the hard limit), so the task's connection waits end too. */
  abort(handle: WorkerHandle, f: InFlightTask, reason: string, code: 'SOFT_TIMEOUT' | 'HARD_TIMEOUT'): void;
  /** pg_cancel_backend, then (terminate = true) pg_terminate_backend, on the task's own backend. */
  stopBackend(handle: WorkerHandle, f: InFlightTask, terminate: boolean): Promise<void>;
  /** Forks the worker's replacement now; the worker takes no new task and leaves once it is ready. */
  replaceWorker(handle: WorkerHandle, f: InFlightTask): void;
  /** SIGKILL: the exit handler settles the task as timed out. */
  killWorker(handle: WorkerHandle, f: InFlightTask): void;
}

/** Between escalation steps after the hard limit: cancel → terminate → kill. */
export const escalationStepMs = 300;

export class TimeLimits {
  constructor(
    private readonly defaults: TimeLimitDefaults,
    private readonly actions: TimeLimitActions,
    private readonly log: Logger,
  ) {}

  watch(handle: WorkerHandle, f: InFlightTask, info: TaskInfo | undefined): void {
    const soft = info?.softTimeoutMs ?? this.defaults.softTimeoutMs;
    const hard = info?.hardTimeoutMs ?? this.defaults.hardTimeoutMs;
    if (soft && soft > 0 && (!hard || soft < hard)) {
      f.timers.push(
        setTimeout(() => {
          this.log.warn(this.#fields('task_soft_timeout', handle, f, soft), 'soft time limit passed: aborting the task signal');
          this.actions.abort(handle, f, `soft time limit of ${soft} ms passed`, 'SOFT_TIMEOUT');
        }, soft),
      );
    }
    if (hard && hard > 0) f.timers.push(setTimeout(() => this.#hard(handle, f, hard), hard));
  }

  #hard(handle: WorkerHandle, f: InFlightTask, hard: number): void {
    if (handle.inFlight.get(f.task.id) !== f) return;
    f.timedOut = true;
    this.log.warn(this.#fields('task_hard_timeout', handle, f, hard), 'hard time limit passed: cancelling the task');
    // Started first: a worker that has to be killed 600 ms from now has its replacement ready about then.
    this.actions.replaceWorker(handle, f);
    this.actions.abort(handle, f, `hard time limit of ${hard} ms passed`, 'HARD_TIMEOUT');
    const stillRunning = () => handle.inFlight.get(f.task.id) === f;
    void this.actions.stopBackend(handle, f, false);
    f.timers.push(
      setTimeout(() => {
        if (stillRunning()) void this.actions.stopBackend(handle, f, true);
      }, escalationStepMs),
      setTimeout(() => {
        if (!stillRunning()) return;
        this.log.warn(this.#fields('worker_killed_for_timeout', handle, f, hard), 'the task did not stop: killing its worker');
        this.actions.killWorker(handle, f);
      }, 2 * escalationStepMs),
    );
  }

  #fields(event: string, handle: WorkerHandle, f: InFlightTask, limitMs: number) {
    return { event, taskId: f.task.id, task: f.task.name, attempt: f.task.attempt, workerId: handle.id, workerPid: handle.pid, limitMs, backendPid: f.backendPid };
  }
}
