/**
 * Claims due tasks for the free slots of ready workers and hands them over IPC. One claim runs at a time;
 * wakes that arrive meanwhile fold into one more round. Woken by NOTIFY, by a slot freeing up, by a timer
 * for the next scheduled task, and by a slow safety poll.
 *
 * Up to `prefetch` claimed tasks wait in a local buffer, so that a freed slot gets its next task at once,
 * without a database round trip. Buffered tasks are `running` under this supervisor's lease: if it dies they
 * are reclaimed like any other; on a graceful stop they are given back uncounted.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Queryable } from '../db/queryable.js';
import { claimTasks, nextRunAt, type ClaimedTask } from '../queue/claim-tasks.js';
import { releaseTasks } from '../queue/release-tasks.js';
import type { WorkerHandle } from './worker-handle.js';

export interface DispatcherDeps {
  db: Queryable;
  schema: string;
  supervisorId: string;
  log: Logger;
  /** Ready workers. */
  workers: () => WorkerHandle[];
  /** Names this supervisor's workers can run, and their max attempts. */
  taskNames: () => string[];
  maxAttemptsByName: () => Record<string, number>;
  defaultMaxAttempts: number;
  /** How often to look for due tasks when nothing wakes the dispatcher. */
  pollIntervalMs: number;
  /** Called once a task is in a worker's hands. */
  onAssigned: (worker: WorkerHandle, taskId: string) => void;
  /** Claimed tasks kept ready beyond the free slots. */
  prefetch: number;
  /** Only tasks of these named queues; null: all. */
  queues: readonly string[] | null;
}

export class Dispatcher {
  #running = false;
  #again = false;
  #paused = true;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #buffer: ClaimedTask[] = [];

  constructor(private readonly deps: DispatcherDeps) {}

  resume(): void {
    this.#paused = false;
    this.wake();
  }

  pause(): void {
    this.#paused = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  wake(): void {
    if (this.#paused) return;
    this.#drain();
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#loop().finally(() => {
      this.#running = false;
    });
  }

  async #loop(): Promise<void> {
    let failures = 0;
    do {
      this.#again = false;
      try {
        await this.#round();
        failures = 0;
      } catch (error) {
        failures += 1;
        const wait = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
        this.deps.log.warn({ event: 'claim_failed', err: error, retryInMs: wait }, 'could not claim tasks; retrying');
        await delay(wait);
        this.#again = true;
      }
    } while (this.#again && !this.#paused);
  }

  /** Takes a claimed task out of the buffer before it reaches a worker (it was cancelled). */
  unbuffer(taskId: string): ClaimedTask | undefined {
    const i = this.#buffer.findIndex((t) => t.id === taskId);
    return i >= 0 ? this.#buffer.splice(i, 1)[0] : undefined;
  }

  /** Gives the buffered tasks back to the queue, uncounted (graceful stop). */
  async releaseBuffered(): Promise<number> {
    const ids = this.#buffer.map((t) => t.id);
    this.#buffer = [];
    return releaseTasks(this.deps.db, this.deps.schema, this.deps.supervisorId, ids);
  }

  async #round(): Promise<void> {
    const free = this.deps.workers().reduce((n, w) => n + w.freeSlots, 0);
    const names = this.deps.taskNames();
    const want = free + this.deps.prefetch - this.#buffer.length;
    // With no free slot, refill only below half the prefetch: fewer, larger claims.
    if (want <= 0 || names.length === 0 || (free === 0 && this.#buffer.length > this.deps.prefetch / 2)) return;
    const tasks = await claimTasks(this.deps.db, this.deps.schema, {
      supervisorId: this.deps.supervisorId,
      names,
      limit: want,
      maxAttemptsByName: this.deps.maxAttemptsByName(),
      defaultMaxAttempts: this.deps.defaultMaxAttempts,
      queues: this.deps.queues,
    });
    this.#buffer.push(...tasks);
    this.#drain();
    if (this.#paused && this.#buffer.length > 0) await this.releaseBuffered();
    if (tasks.length === want) {
      this.#again = true;
      return;
    }
    await this.#scheduleNext(names);
  }

  /** Hands buffered tasks to free slots, least loaded worker first. Synchronous: no database involved. */
  #drain(): void {
    if (this.#buffer.length === 0 || this.#paused) return;
    const workers = this.deps.workers();
    while (this.#buffer.length > 0) {
      let best: WorkerHandle | undefined;
      for (const w of workers) if (w.freeSlots > 0 && (!best || w.freeSlots > best.freeSlots)) best = w;
      if (!best) return;
      const task = this.#buffer[0]!;
      if (!best.assign(task)) {
        // The worker is going away; it will not be chosen again (its state changes on exit).
        workers.splice(workers.indexOf(best), 1);
        continue;
      }
      this.#buffer.shift();
      this.deps.onAssigned(best, task.id);
    }
  }

  /** Sets a timer for the next scheduled task, or the safety poll, whichever is sooner. */
  async #scheduleNext(names: string[]): Promise<void> {
    const next = await nextRunAt(this.deps.db, this.deps.schema, names, this.deps.queues);
    const pollAt = Date.now() + this.deps.pollIntervalMs;
    const at = next ? Math.min(Math.max(next.getTime(), Date.now() + 50), pollAt) : pollAt;
    if (this.#paused || (this.#timer && this.#timerAt <= at)) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.wake();
    }, at - Date.now());
    this.#timer.unref();
  }
}
