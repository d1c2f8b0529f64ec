/**
 * Claims due tasks for the free slots of ready workers and hands them over IPC. One claim runs at a time;
 * wakes that arrive meanwhile fold into one more round. Woken by NOTIFY, by a slot freeing up, by a timer
 * for the next scheduled task, and by a slow safety poll.
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
}

export class Dispatcher {
  #running = false;
  #again = false;
  #paused = true;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

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

  wake(): void {
    if (this.#paused) return;
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

  async #round(): Promise<void> {
    const free = this.deps.workers().reduce((n, w) => n + w.freeSlots, 0);
    const names = this.deps.taskNames();
    if (free === 0 || names.length === 0) return;
    const tasks = await claimTasks(this.deps.db, this.deps.schema, {
      supervisorId: this.deps.supervisorId,
      names,
      limit: free,
      maxAttemptsByName: this.deps.maxAttemptsByName(),
      defaultMaxAttempts: this.deps.defaultMaxAttempts,
    });
    const unassigned = this.#assign(tasks);
    if (unassigned.length > 0) {
      // Workers went away between the claim and the hand-over: give the tasks back untouched.
      await releaseTasks(this.deps.db, this.deps.schema, this.deps.supervisorId, unassigned.map((t) => t.id));
    }
    if (tasks.length === free) {
      this.#again = true;
      return;
    }
    await this.#scheduleNext(names);
  }

  #assign(tasks: ClaimedTask[]): ClaimedTask[] {
    const unassigned: ClaimedTask[] = [];
    for (const task of tasks) {
      let placed = false;
      // Least loaded first: spreads work across processes when concurrency > 1.
      const candidates = this.deps.workers().filter((w) => w.freeSlots > 0).sort((a, b) => b.freeSlots - a.freeSlots);
      for (const worker of candidates) {
        if (worker.assign(task)) {
          placed = true;
          this.deps.onAssigned(worker, task.id);
          break;
        }
      }
      if (!placed) unassigned.push(task);
    }
    return unassigned;
  }

  /** Sets a timer for the next scheduled task, or the safety poll, whichever is sooner. */
  async #scheduleNext(names: string[]): Promise<void> {
    const next = await nextRunAt(this.deps.db, this.deps.schema, names);
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
