import type { Worker } from 'node:cluster';
import type { PrimaryMessage, TaskInfo } from '../protocol.js';
import type { ClaimedTask } from '../queue/claim-tasks.js';

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'exited';

export interface InFlightTask {
  task: ClaimedTask;
  startedAt: number;
  /** The backend of the task's own connection, once it opened one. */
  backendPid: number | null;
}

/** The primary's view of one worker process. */
export class WorkerHandle {
  readonly id: number;
  readonly pid: number;
  readonly startedAt = Date.now();
  readonly inFlight = new Map<string, InFlightTask>();
  state: WorkerState = 'starting';
  tasks: TaskInfo[] = [];
  tasksDone = 0;
  failures = 0;
  rss: number | null = null;
  loopLagMs: number | null = null;

  constructor(
    readonly worker: Worker,
    readonly concurrency: number,
  ) {
    this.id = worker.id;
    this.pid = worker.process.pid ?? 0;
  }

  get freeSlots(): number {
    return this.state === 'ready' ? this.concurrency - this.inFlight.size : 0;
  }

  send(message: PrimaryMessage): boolean {
    if (!this.worker.isConnected()) return false;
    try {
      this.worker.send(message);
      return true;
    } catch {
      return false;
    }
  }

  assign(task: ClaimedTask): boolean {
    this.inFlight.set(task.id, { task, startedAt: Date.now(), backendPid: null });
    if (this.send({ type: 'run', task })) return true;
    this.inFlight.delete(task.id);
    return false;
  }

  snapshot(now = Date.now()) {
    return {
      id: this.id,
      pid: this.pid,
      state: this.state,
      tasksDone: this.tasksDone,
      failures: this.failures,
      rss: this.rss,
      loopLagMs: this.loopLagMs,
      uptimeMs: now - this.startedAt,
      current: [...this.inFlight.values()].map((f) => ({
        taskId: f.task.id,
        name: f.task.name,
        attempt: f.task.attempt,
        runningMs: now - f.startedAt,
        backendPid: f.backendPid,
      })),
    };
  }
}

export type WorkerSnapshot = ReturnType<WorkerHandle['snapshot']>;
