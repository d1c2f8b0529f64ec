import type { Worker } from 'node:cluster';
import type { PrimaryMessage, TaskInfo } from '../protocol.js';
import type { ClaimedTask } from '../queue/claim-tasks.js';

/** draining: takes no new tasks, exits once its replacement is ready and its tasks are done. */
export type WorkerState = 'starting' | 'waiting_for_database' | 'ready' | 'draining' | 'stopping' | 'exited';

export interface InFlightTask {
  task: ClaimedTask;
  startedAt: number;
  /** The backend of the task's own connection, once it opened one. */
  backendPid: number | null;
  /** Set once the hard time limit fired: the attempt ends `timed_out` unless it succeeded. */
  timedOut: boolean;
  /** Set when the task was cancelled while running: it ends `cancelled` unless it succeeded. */
  cancelled: boolean;
  /** Time-limit and escalation timers; cleared when the task leaves the worker. */
  timers: NodeJS.Timeout[];
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
    this.inFlight.set(task.id, { task, startedAt: Date.now(), backendPid: null, timedOut: false, cancelled: false, timers: [] });
    if (this.send({ type: 'run', task })) return true;
    this.inFlight.delete(task.id);
    return false;
  }

  /** Removes a task from the worker's books and stops its timers. */
  take(taskId: string): InFlightTask | undefined {
    const f = this.inFlight.get(taskId);
    if (!f) return undefined;
    this.inFlight.delete(taskId);
    for (const t of f.timers) clearTimeout(t);
    return f;
  }

  /** Empties the worker's books (it exited or is being abandoned). */
  takeAll(): InFlightTask[] {
    return [...this.inFlight.keys()].map((id) => this.take(id)!);
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
