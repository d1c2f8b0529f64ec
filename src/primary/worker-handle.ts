import type { Worker } from 'node:cluster';
import type { PrimaryMessage, TaskInfo } from '../protocol.js';
import type { ClaimedTask } from '../queue/claim-tasks.js';

/** draining: takes no new tasks, exits once its replacement is ready and its tasks are done. */
export type WorkerState = 'starting' | 'waiting_for_database' | 'ready' | 'draining' | 'stopping' | 'exited';

export interface InFlightTask {
  task: ClaimedTask;
  /** Whether the worker has started it: it runs its tasks in order, `concurrency` at a time. */
  started: boolean;
  /** When it started (when it was handed over, until then). */
  startedAt: number;
  /** The backend of the task's own connection, once it opened one. */
  backendPid: number | null;
  /** Set once the hard time limit fired: the attempt ends `timed_out` unless it succeeded. */
  timedOut: boolean;
  /** Set when the task was cancelled while running: it ends `cancelled` unless it succeeded. */
  cancelled: boolean;
  /** Time-limit and escalation timers; cleared when the task leaves the worker. */
  timers: NodeJS.Timeout[];
  /** What the attempt last reported with ctx.progress (undefined: nothing). */
  progress?: unknown;
}

/** A worker is sent a queue beyond its free slots only while its tasks take less than this on average. */
export const pipelineWindowMs = 2;
/** The longest queue a worker is sent beyond its free slots (by default; `--prefetch N` caps it at N). */
export const maxPipeline = 64;
/** A task running this long makes its worker's queue stuck: no more is queued there, and what is goes elsewhere. */
export const stuckQueueMs = 10 * pipelineWindowMs;
/** Weight of the newest run time in the average that sizes the queue. */
const runTimeWeight = 0.2;

/**
 * The primary's view of one worker process.
 *
 * A worker runs its tasks in the order they were handed over, `concurrency` at a time, so the tasks it runs
 * are always the first `concurrency` of those not yet finished: the primary knows which have started (for
 * time limits, and for redelivery after a crash) without being told. Tasks that take well under a
 * millisecond are sent ahead in a short queue, many per IPC message, so that the worker does not wait a
 * round trip between them; as soon as tasks take longer the queue goes (no task waits behind a slow one).
 */
export class WorkerHandle {
  readonly id: number;
  readonly pid: number;
  readonly startedAt = Date.now();
  /** Handed over and not finished, in hand-over order: the first `concurrency` have started. */
  readonly inFlight = new Map<string, InFlightTask>();
  /** Called when a task starts on the worker (by the primary's reckoning). */
  onStart: (f: InFlightTask) => void = () => {};
  /** Tasks this worker may still be given in all (recycling by task count); Infinity: no limit. */
  maxTasks = Infinity;
  /** The longest queue this worker may be sent beyond its free slots (0: one task per slot, nothing ahead). */
  maxQueue = maxPipeline;
  #runTimeMs: number | null = null;
  #pipeline = 0;
  /** An `unqueue` was sent and its answer has not come. */
  unqueuePending = false;
  state: WorkerState = 'starting';
  #tasks: TaskInfo[] = [];
  #names: ReadonlySet<string> = new Set();
  #signature = '';
  tasksDone = 0;
  failures = 0;
  /** Killed by the primary because a task of its passed its hard limit: the tasks beside it are not to blame. */
  killedForTimeLimit = false;
  rss: number | null = null;
  /** The event-loop lag the latest heartbeat reported. */
  loopLagMs: number | null = null;
  /** When the latest heartbeat came, or the worker became ready (Date.now()); null: not ready yet. */
  #heartbeatAt: number | null = null;
  /** The most lag reported since the snapshot was last published: a stall is shown even when two heartbeats came between publishes. */
  #lagPeak: number | null = null;

  constructor(
    readonly worker: Worker,
    readonly concurrency: number,
  ) {
    this.id = worker.id;
    this.pid = worker.process.pid ?? 0;
  }

  /** The tasks of the module this worker loaded, as it reported them when ready. */
  get tasks(): TaskInfo[] {
    return this.#tasks;
  }

  set tasks(tasks: TaskInfo[]) {
    this.#tasks = tasks;
    this.#names = new Set(tasks.map((t) => t.name));
    this.#signature = [...this.#names].sort().join('\n');
  }

  /**
   * The names of the worker's task module, sorted and joined: workers that loaded the same module have equal
   * signatures (the dispatcher deals without looking at names then). Empty until the worker is ready.
   */
  get signature(): string {
    return this.#signature;
  }

  /** Whether this worker's task module has a task of this name (a reload may add or remove names). */
  offers(name: string): boolean {
    return this.#names.has(name);
  }

  get freeSlots(): number {
    if (this.state !== 'ready') return 0;
    const room = this.concurrency + (this.#runningLongerThan(stuckQueueMs) ? 0 : this.#pipeline) - this.inFlight.size;
    const allowed = this.maxTasks - this.tasksDone - this.failures - this.inFlight.size;
    return Math.max(0, Math.min(room, allowed));
  }

  /** Tasks handed over that the worker has not started. */
  get queued(): number {
    return Math.max(0, this.inFlight.size - this.concurrency);
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

  /** Hands tasks over in one message; false when the worker is gone (nothing was handed over). */
  assign(tasks: ClaimedTask[]): boolean {
    const now = Date.now();
    for (const task of tasks) {
      this.inFlight.set(task.id, { task, started: false, startedAt: now, backendPid: null, timedOut: false, cancelled: false, timers: [] });
    }
    if (this.send({ type: 'run', tasks: tasks.map(({ id, name, payload, attempt, maxAttempts }) => ({ id, name, payload, attempt, maxAttempts })) })) {
      this.#promote(now);
      return true;
    }
    for (const task of tasks) this.inFlight.delete(task.id);
    return false;
  }

  /** Removes a task from the worker's books and stops its timers; the next queued task starts. */
  take(taskId: string): InFlightTask | undefined {
    const f = this.inFlight.get(taskId);
    if (!f) return undefined;
    this.inFlight.delete(taskId);
    for (const t of f.timers) clearTimeout(t);
    const now = Date.now();
    if (f.started) this.#recordRunTime(now - f.startedAt);
    this.#promote(now);
    return f;
  }

  /** Empties the worker's books (it exited or is being abandoned): started tasks first, in order. */
  takeAll(): InFlightTask[] {
    const all = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const f of all) for (const t of f.timers) clearTimeout(t);
    return all;
  }

  /** Whether queued tasks wait behind a task that has run for `stuckQueueMs` already. */
  get queueStuck(): boolean {
    return this.queued > 0 && this.#runningLongerThan(stuckQueueMs);
  }

  #runningLongerThan(ms: number): boolean {
    if (this.inFlight.size === 0) return false;
    const now = Date.now();
    let i = 0;
    for (const f of this.inFlight.values()) {
      if (i++ >= this.concurrency) break;
      if (f.started && now - f.startedAt >= ms) return true;
    }
    return false;
  }

  /** The first `concurrency` unfinished tasks are the ones running. */
  #promote(now: number): void {
    let i = 0;
    for (const f of this.inFlight.values()) {
      if (i++ >= this.concurrency) break;
      if (f.started) continue;
      f.started = true;
      f.startedAt = now;
      this.onStart(f);
    }
  }

  #recordRunTime(ms: number): void {
    this.#runTimeMs = this.#runTimeMs === null ? ms : this.#runTimeMs + runTimeWeight * (ms - this.#runTimeMs);
    this.#pipeline = this.#runTimeMs >= pipelineWindowMs ? 0 : Math.min(this.maxQueue, Math.floor(pipelineWindowMs / Math.max(this.#runTimeMs, 0.05)));
  }

  /** The worker said it is ready, with the tasks of its module; its heartbeats start now. */
  becameReady(tasks: TaskInfo[]): void {
    this.state = 'ready';
    this.tasks = tasks;
    this.#heartbeatAt = Date.now();
  }

  heartbeat(rss: number, loopLagMs: number): void {
    this.#heartbeatAt = Date.now();
    this.rss = rss;
    this.loopLagMs = loopLagMs;
    this.#lagPeak = Math.max(this.#lagPeak ?? 0, loopLagMs);
  }

  /** The snapshot was published: the lag shown starts over from the next heartbeat. */
  published(): void {
    this.#lagPeak = null;
  }

  /**
   * `heartbeatMs`: how often a worker says how it is. A worker silent for longer has a blocked event loop (CPU-bound
   * code), which its next heartbeat would report: its lag is shown as at least the silence past one heartbeat,
   * not as the figure its last heartbeat gave before the stall.
   */
  snapshot(now = Date.now(), heartbeatMs = 1_000) {
    const reported = this.#lagPeak ?? this.loopLagMs;
    const silentMs = this.#heartbeatAt === null ? 0 : now - this.#heartbeatAt - heartbeatMs;
    const loopLagMs = silentMs > heartbeatMs ? Math.max(reported ?? 0, silentMs) : reported;
    return {
      id: this.id,
      pid: this.pid,
      state: this.state,
      tasksDone: this.tasksDone,
      failures: this.failures,
      rss: this.rss,
      loopLagMs,
      uptimeMs: now - this.startedAt,
      current: [...this.inFlight.values()].filter((f) => f.started).map((f) => ({
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
