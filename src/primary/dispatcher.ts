/**
 * Claims due tasks for the free slots of ready workers and hands them over IPC. One claim runs at a time;
 * wakes that arrive meanwhile fold into one more round. Woken by NOTIFY, by a slot freeing up, by a timer
 * for the next scheduled task, and by a slow safety poll.
 *
 * Claimed tasks wait in a local buffer, so that a freed slot gets its next task at once, without a database
 * round trip. Buffered tasks are `running` under this supervisor's lease: if it dies they are reclaimed like
 * any other; on a graceful stop they are given back uncounted.
 *
 * The buffer's size follows the throughput: it starts at `prefetch` and doubles (up to `maxPrefetch`) each time a
 * worker had a free slot and nothing was buffered while the queue still held due tasks, and each time it needs
 * refilling within `refillGrowMs` of a claim that left due tasks behind; a claim that finds fewer due tasks than it
 * asked for sets it back. Short tasks so get claims of hundreds (one statement for many tasks), a claim covers at
 * least a tenth of a second of work, and long tasks stay spread over the supervisors.
 *
 * A claim that found fewer due tasks than it asked for leaves the queue known to be empty: until something may
 * have put a task in it (a NOTIFY, the timer of a scheduled task or a retry, the safety poll), freed slots are
 * filled from the buffer only, without asking the database.
 *
 * Names with limits across supervisors (maxRunning, rateLimit) are claimed apart, one name at a time, first in
 * each round and never into the buffer (#claimLimited). Paused names (prefork pause) are not claimed at all.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PreparingQueryable } from '../db/queryable.js';
import { claimLimitedTasks, claimTasks, nextRunAt, type ClaimedTask, type TaskLimits } from '../queue/claim-tasks.js';
import { releaseTasks } from '../queue/release-tasks.js';
import { stuckQueueMs, type WorkerHandle } from './worker-handle.js';

/** A claim needed again sooner than this after one that left due tasks behind doubles the buffer's target. */
const refillGrowMs = 100;

export interface DispatcherDeps {
  db: PreparingQueryable;
  schema: string;
  supervisorId: string;
  log: Logger;
  /** The workers (those ready take tasks, each only of the names its task module has). */
  workers: () => WorkerHandle[];
  /** Max attempts by task name, for the claim. */
  maxAttemptsByName: () => Record<string, number>;
  /** Gives claimed tasks back to the queue, uncounted (the stop waits for it). */
  giveBack: (ids: string[], reason: string) => void;
  /** The names among them with limits across supervisors (claimed one name at a time, for free slots only). */
  limits: () => ReadonlyMap<string, TaskLimits>;
  /** Names paused (prefork pause): never claimed. */
  paused: () => ReadonlySet<string>;
  defaultMaxAttempts: number;
  /** How often to look for due tasks when nothing wakes the dispatcher. */
  pollIntervalMs: number;
  /** Claimed tasks kept ready beyond the free slots, at first and whenever the queue runs dry. */
  prefetch: number;
  /** The most the buffer grows to while workers wait for tasks (equal to `prefetch`: a fixed size). */
  maxPrefetch: number;
  /** Only tasks of these named queues; null: all. */
  queues: readonly string[] | null;
}

export class Dispatcher {
  #running = false;
  #again = false;
  #paused = true;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #rebalanceTimer: NodeJS.Timeout | undefined;
  #wakeScheduled = false;
  #buffer: ClaimedTask[] = [];
  #target: number;
  /** The last claim got all it asked for: the queue may hold more due tasks. */
  #queueDeep = false;
  /** The target grows at most once per claim. */
  #grown = false;
  /** The last claim left no due task behind, and nothing has woken the dispatcher since. */
  #queueEmpty = false;
  /** Counts wakes that may mean new due tasks: a claim that raced one proves nothing about emptiness. */
  #wakes = 0;
  /** When the last claim was sent (performance.now()). */
  #claimedAt = -Infinity;
  /** Limited names whose last claim got fewer than it asked for, with the wake count then: skipped until a wake. */
  #limitedDry = new Map<string, number>();
  /** Limited names a limit stopped at their last claim: their due tasks wait for a wake, not for the next-due timer. */
  #limitedBlocked = new Set<string>();
  #limitedTurn = 0;
  /** The task modules of the ready workers at the last deal (see #drain): a change may leave buffered tasks no worker runs. */
  #modules: string | null = null;

  constructor(private readonly deps: DispatcherDeps) {
    this.#target = deps.prefetch;
  }

  resume(): void {
    this.#paused = false;
    this.wake();
  }

  pause(): void {
    this.#paused = true;
    clearTimeout(this.#rebalanceTimer);
    this.#rebalanceTimer = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Claim statements sent and not yet answered (their tasks may be running under this supervisor already). */
  #claiming = 0;

  get claiming(): boolean {
    return this.#claiming > 0;
  }

  /** The ids of the tasks claimed and not yet handed to a worker. */
  bufferedIds(): string[] {
    return this.#buffer.map((t) => t.id);
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  /** The last claim left no due task behind, nothing woke the dispatcher since, and nothing waits in the buffer. */
  get nothingDue(): boolean {
    return this.#queueEmpty && !this.#running && this.#buffer.length === 0;
  }

  /**
   * Something may have put due tasks in the queue (a NOTIFY, a timer, a worker that became ready). Wakes are
   * gathered until the current turn of the event loop ends: the outcomes a worker reports together free their
   * slots together, and the freed slots are refilled in one message per worker.
   */
  wake(): void {
    this.#wakes += 1;
    this.#queueEmpty = false;
    this.slotsFreed();
  }

  /** Slots became free: refilled from the buffer, and from the queue unless it is known to be empty. */
  slotsFreed(): void {
    if (this.#paused || this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.#wakeNow();
    });
  }

  #wakeNow(): void {
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

  /** Tasks a worker gave back unstarted go first in line; false when paused (the caller releases them). */
  putBack(tasks: ClaimedTask[]): boolean {
    if (this.#paused) return false;
    this.#buffer.unshift(...this.#admit(tasks));
    this.slotsFreed();
    return true;
  }

  /** A task went back to the queue due at `at` (a retry with a backoff): look for it then. */
  wakeAt(at: number): void {
    if (this.#paused || (this.#timer && this.#timerAt <= at)) return;
    this.#setTimer(at);
  }

  /**
   * A task claimed outside the dispatcher (submitted directly): first in line, handed to a free slot now.
   * False when paused (the caller releases it).
   */
  runNow(task: ClaimedTask): boolean {
    if (this.#paused) return false;
    this.#buffer.unshift(task);
    this.#drain();
    return true;
  }

  /** Takes a claimed task out of the buffer before it reaches a worker (it was cancelled). */
  unbuffer(taskId: string): ClaimedTask | undefined {
    const i = this.#buffer.findIndex((t) => t.id === taskId);
    return i >= 0 ? this.#buffer.splice(i, 1)[0] : undefined;
  }

  /** Takes the buffered tasks of these names out (they were paused); the caller gives them back. */
  unbufferNames(names: ReadonlySet<string>): string[] {
    const taken = this.#buffer.filter((t) => names.has(t.name));
    if (taken.length > 0) this.#buffer = this.#buffer.filter((t) => !names.has(t.name));
    return taken.map((t) => t.id);
  }

  /** Gives the buffered tasks back to the queue, uncounted (graceful stop). */
  async releaseBuffered(): Promise<number> {
    const ids = this.#buffer.map((t) => t.id);
    this.#buffer = [];
    return releaseTasks(this.deps.db, this.deps.schema, this.deps.supervisorId, ids);
  }

  async #round(): Promise<void> {
    const freeSlots = () => this.deps.workers().reduce((n, w) => n + w.freeSlots, 0);
    let free = freeSlots();
    const paused = this.deps.paused();
    const offered = offeredNames(this.deps.workers());
    const all = paused.size > 0 ? offered.filter((n) => !paused.has(n)) : offered;
    const limits = onlyNames(this.deps.limits(), all);
    // A name whose limits a reload removed is no longer held back.
    for (const n of this.#limitedBlocked) if (!limits.has(n)) this.#limitedBlocked.delete(n);
    let names = all;
    if (limits.size > 0) {
      const asked = await this.#claimLimited(limits, free);
      if (this.#paused && this.#buffer.length > 0) await this.releaseBuffered();
      free = freeSlots();
      names = all.filter((n) => !limits.has(n));
      if (names.length === 0) return asked ? this.#scheduleNext(this.#notBlocked(all)) : undefined;
    }
    // With no free slot, refill only below half the target: fewer, larger claims.
    if (free + this.#target - this.#buffer.length <= 0 || names.length === 0 || (free === 0 && this.#buffer.length > this.#target / 2)) return;
    if (this.#queueEmpty) return;
    // Back for more soon after a claim that left due tasks behind: the buffer is small for this throughput.
    const now = performance.now();
    if (this.#queueDeep && now - this.#claimedAt < refillGrowMs) this.#target = Math.min(this.deps.maxPrefetch, this.#target * 2);
    this.#claimedAt = now;
    const want = free + this.#target - this.#buffer.length;
    const wakes = this.#wakes;
    this.#claiming += 1;
    let tasks: ClaimedTask[];
    try {
      tasks = await claimTasks(this.deps.db, this.deps.schema, {
        supervisorId: this.deps.supervisorId,
        names,
        limit: want,
        maxAttemptsByName: this.deps.maxAttemptsByName(),
        defaultMaxAttempts: this.deps.defaultMaxAttempts,
        queues: this.deps.queues,
      });
      this.#buffer.push(...this.#admit(tasks));
    } finally {
      this.#claiming -= 1;
    }
    this.deps.log.debug({ event: 'tasks_claimed', asked: want, claimed: tasks.length }, 'claimed tasks');
    this.#queueDeep = tasks.length === want;
    this.#queueEmpty = !this.#queueDeep && wakes === this.#wakes;
    this.#grown = false;
    if (!this.#queueDeep) this.#target = this.deps.prefetch;
    this.#drain();
    if (this.#paused && this.#buffer.length > 0) await this.releaseBuffered();
    if (this.#queueDeep) {
      this.#again = true;
      return;
    }
    await this.#scheduleNext(this.#notBlocked(all));
  }

  #notBlocked(names: string[]): string[] {
    return this.#limitedBlocked.size === 0 ? names : names.filter((n) => !this.#limitedBlocked.has(n));
  }

  /**
   * Tasks of limited names go first in line, before unlimited tasks of any priority, so that a limited name gets
   * its share while its limits allow however long the queue ahead of it. They are claimed for the slots free now,
   * or, when none is (the buffer fills freed slots first), one per name without a rate for the next slot to
   * free, and never more while one of the name waits in the buffer: a task waiting there counts against its
   * name's limits without running. A name whose claim got fewer than it asked for is skipped until a wake: a
   * settle of one of its tasks notifies one, and a full rate window sets a timer for when it frees.
   */
  async #claimLimited(limits: ReadonlyMap<string, TaskLimits>, free: number): Promise<boolean> {
    let asked = false;
    // Each round starts at the next name, so that one name with a long queue does not take every free slot.
    const entries = [...limits];
    const first = this.#limitedTurn++ % entries.length;
    const paused = this.deps.paused();
    for (const [name, nameLimits] of [...entries.slice(first), ...entries.slice(0, first)]) {
      if (this.#limitedDry.get(name) === this.#wakes || paused.has(name)) continue;
      // Ahead of a slot only without a rate: the window counts claims, and a task waiting in the buffer would
      // start later than its place in the window says, so that starts could come closer together than the rate.
      const want = free > 0 ? free : nameLimits.rateLimit || this.#buffer.some((t) => t.name === name) ? 0 : 1;
      if (want === 0) continue;
      const wakes = this.#wakes;
      asked = true;
      this.#claiming += 1;
      let claim;
      try {
        claim = await claimLimitedTasks(this.deps.db, this.deps.schema, {
          supervisorId: this.deps.supervisorId,
          name,
          limits: nameLimits,
          limit: want,
          maxAttemptsByName: this.deps.maxAttemptsByName(),
          defaultMaxAttempts: this.deps.defaultMaxAttempts,
          queues: this.deps.queues,
        });
        this.#buffer.unshift(...this.#admit(claim.tasks));
      } finally {
        this.#claiming -= 1;
      }
      if (claim.tasks.length < want) this.#limitedDry.set(name, wakes);
      if (claim.blocked) this.#limitedBlocked.add(name);
      else this.#limitedBlocked.delete(name);
      // Database time; a few milliseconds late rather than early, and never a busy loop on a clock behind it.
      if (claim.blockedUntil) this.wakeAt(Math.max(claim.blockedUntil.getTime() + 5, Date.now() + 20));
      free = Math.max(0, free - claim.tasks.length);
      this.#drain();
      if (this.#paused) break;
    }
    return asked;
  }

  /**
   * Deals buffered tasks to free slots, the worker with the most free slots first, then hands each worker its
   * share in one IPC message. Synchronous: no database involved.
   */
  #drain(): void {
    if (this.#paused) return;
    const workers = this.deps.workers();
    const free = new Map<WorkerHandle, number>();
    // Workers that loaded different task modules (a reload under way) get only the tasks their module has.
    let signature: string | undefined;
    let mixed = false;
    for (const w of workers) {
      if (w.state !== 'ready') continue;
      if (signature === undefined) signature = w.signature;
      else if (w.signature !== signature) mixed = true;
      if (w.freeSlots > 0) free.set(w, w.freeSlots);
    }
    // null while no worker is ready: what was admitted meanwhile is checked when one is.
    const modules = mixed ? modulesKey(workers) : (signature ?? null);
    if (modules !== this.#modules) {
      this.#modules = modules;
      // Buffered tasks of a name none of the ready workers has any more go back to the queue.
      if (modules !== null) this.#buffer = this.#admit(this.#buffer);
    }
    if (free.size === 0) return;
    const shares = new Map<WorkerHandle, ClaimedTask[]>();
    const deal = (task: ClaimedTask, best: WorkerHandle, most: number) => {
      free.set(best, most - 1);
      const share = shares.get(best);
      if (share) share.push(task);
      else shares.set(best, [task]);
    };
    if (!mixed) {
      let dealt = 0;
      while (dealt < this.#buffer.length) {
        let best: WorkerHandle | undefined;
        let most = 0;
        for (const [w, n] of free) if (n > most) [best, most] = [w, n];
        if (!best) break;
        deal(this.#buffer[dealt++]!, best, most);
      }
      this.#buffer.splice(0, dealt);
    } else {
      const left: ClaimedTask[] = [];
      for (const task of this.#buffer) {
        let best: WorkerHandle | undefined;
        let most = 0;
        for (const [w, n] of free) if (n > most && w.offers(task.name)) [best, most] = [w, n];
        if (best) deal(task, best, most);
        else left.push(task);
      }
      this.#buffer = left;
    }
    // A worker that cannot be sent to is going away; its tasks wait for the next round.
    for (const [w, tasks] of shares) if (!w.assign(tasks)) this.#buffer.unshift(...tasks);
    if (this.#buffer.length > 0) return;
    if ([...free.values()].some((n) => n > 0)) {
      // A slot waits while due tasks remain in the queue: the buffer is too small for this throughput.
      if (this.#queueDeep && !this.#grown) {
        this.#target = Math.min(this.deps.maxPrefetch, Math.max(1, this.#target * 2));
        this.#grown = true;
      }
      this.#rebalance(workers);
    }
  }

  /**
   * The tasks a ready worker here can run; the others (a name the reloaded task module dropped, claimed or handed
   * back by an old worker as the modules changed) go back to the queue, uncounted, so that no task reaches a
   * worker without it. While no worker is ready (all restarting), all stay.
   */
  #admit(tasks: ClaimedTask[]): ClaimedTask[] {
    if (tasks.length === 0) return tasks;
    const offered = new Set(offeredNames(this.deps.workers()));
    if (offered.size === 0) return tasks;
    const kept: ClaimedTask[] = [];
    const unoffered: string[] = [];
    for (const t of tasks) {
      if (offered.has(t.name)) kept.push(t);
      else unoffered.push(t.id);
    }
    if (unoffered.length > 0) this.deps.giveBack(unoffered, 'no task module loaded here has a task of this name any more (reload)');
    return kept;
  }

  /**
   * Nothing to hand out and a worker idle: tasks queued on a worker behind one that turned out slow are
   * asked back, so that they do not wait for it. Checked again when a queue could become stuck.
   */
  #rebalance(workers: WorkerHandle[]): void {
    if (!workers.some((w) => w.state === 'ready' && w.inFlight.size === 0)) return;
    let recheck = false;
    for (const w of workers) {
      if (w.queued === 0 || w.unqueuePending) continue;
      if (w.queueStuck) {
        w.unqueuePending = true;
        w.send({ type: 'unqueue' });
      } else {
        recheck = true;
      }
    }
    if (recheck && !this.#rebalanceTimer) {
      this.#rebalanceTimer = setTimeout(() => {
        this.#rebalanceTimer = undefined;
        this.slotsFreed();
      }, stuckQueueMs);
      this.#rebalanceTimer.unref();
    }
  }

  /** Sets a timer for the next scheduled task, or the safety poll, whichever is sooner. */
  async #scheduleNext(names: string[]): Promise<void> {
    const next = await nextRunAt(this.deps.db, this.deps.schema, names, this.deps.queues);
    const pollAt = Date.now() + this.deps.pollIntervalMs;
    const at = next ? Math.min(Math.max(next.getTime(), Date.now() + 50), pollAt) : pollAt;
    if (this.#paused || (this.#timer && this.#timerAt <= at)) return;
    this.#setTimer(at);
  }

  #setTimer(at: number): void {
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

/** The names the ready workers' task modules have, together. */
function offeredNames(workers: readonly WorkerHandle[]): string[] {
  const names = new Set<string>();
  let signature: string | undefined;
  for (const w of workers) {
    if (w.state !== 'ready' || w.signature === signature) continue;
    signature = w.signature;
    for (const t of w.tasks) names.add(t.name);
  }
  return [...names];
}

/** The limits of these names only (a name a reload removed keeps its entry in the supervisor's map). */
function onlyNames(limits: ReadonlyMap<string, TaskLimits>, names: readonly string[]): ReadonlyMap<string, TaskLimits> {
  if (limits.size === 0) return limits;
  const wanted = new Set(names);
  return [...limits.keys()].every((n) => wanted.has(n)) ? limits : new Map([...limits].filter(([n]) => wanted.has(n)));
}

/** The ready workers' task modules, for telling when they change while several are loaded. */
function modulesKey(workers: readonly WorkerHandle[]): string {
  return [...new Set(workers.filter((w) => w.state === 'ready').map((w) => w.signature))].sort().join('\0');
}
