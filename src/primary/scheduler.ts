/**
 * Scheduled tasks: the primary fires each tick of the schedules its task module declares (`defineTask({
 * schedule })`). Every supervisor that offers the task keeps the timers; the database decides which one adds
 * the tick's task (queue/fire-schedule.ts), so a tick makes one task however many supervisors run.
 *
 * Ticks are fired from the supervisor's start on: one that passed while no supervisor ran is not made up. A
 * tick that finds the database unreachable is tried again every second, and ticks that pass meanwhile fold
 * into the latest one. A reload that changes a schedule (or adds or removes one) re-arms it from then on.
 */
import type { Logger } from 'pino';
import type { PreparingQueryable } from '../db/queryable.js';
import { fireSchedule } from '../queue/fire-schedule.js';
import { CronSchedule } from '../schedule/cron.js';
import type { TaskSchedule } from '../task.js';

/** A task's schedule (its `payload` is merged into each tick's, beside `scheduledAt`), and the task's name. */
export interface ScheduledTask extends TaskSchedule {
  name: string;
}

export interface SchedulerDeps {
  db: PreparingQueryable;
  schema: string;
  log: Logger;
  /** Keeps a background promise for the stop to wait on. */
  track: (promise: Promise<unknown>) => void;
  /** Each tick this supervisor handled: its run queued, skipped (the last run not done), or failed (retried). */
  onTick?: (tick: ScheduleTick) => void;
}

export interface ScheduleTick {
  name: string;
  outcome: 'queued' | 'skipped' | 'failed';
}

/** Node's longest timer; a tick further away is waited for in steps. */
const maxTimerMs = 2_147_483_647;
const retryMs = 1_000;

/** A schedule this supervisor keeps: replaced as a whole when the task module changes it. */
interface Armed {
  task: ScheduledTask;
  schedule: CronSchedule;
  /** The tick waited for; null when the expression has none left. */
  at: Date | null;
  timer: NodeJS.Timeout | undefined;
  /** The last tick this supervisor queued a run for, and the ticks it skipped since (the run not done yet). */
  lastQueuedAt: Date | null;
  skippedInARow: number;
  lastSkippedAt: Date | null;
}

export class Scheduler {
  /** Each scheduled task's entry, by name. A timer or a fire that finds its entry replaced does nothing more. */
  readonly #armed = new Map<string, Armed>();
  #stopped = false;

  constructor(private readonly deps: SchedulerDeps) {}

  /** Arms the schedules of the task module the supervisor started with. */
  start(tasks: readonly ScheduledTask[]): void {
    this.update(tasks);
  }

  /**
   * The schedules of the newest worker's task module (a reload, a replacement that loaded a changed file): a new
   * or changed one is armed from now, one gone is disarmed, one unchanged keeps its timer. A tick being fired
   * completes, and fires no further tick of a schedule replaced meanwhile.
   */
  update(tasks: readonly ScheduledTask[]): void {
    if (this.#stopped) return;
    const wanted = new Map(tasks.map((t) => [t.name, t]));
    for (const [name, armed] of this.#armed) {
      if (wanted.has(name)) continue;
      this.#disarm(armed);
      this.deps.log.info({ event: 'schedule_disarmed', task: name, cron: armed.task.cron }, `${name} no longer scheduled`);
    }
    const now = new Date();
    for (const task of tasks) {
      const current = this.#armed.get(task.name);
      if (current && sameSchedule(current.task, task)) continue;
      if (current) this.#disarm(current);
      const schedule = CronSchedule.parse(task.cron, task.timeZone);
      const armed: Armed = { task, schedule, at: null, timer: undefined, lastQueuedAt: current?.lastQueuedAt ?? null, skippedInARow: current?.skippedInARow ?? 0, lastSkippedAt: current?.lastSkippedAt ?? null };
      this.#armed.set(task.name, armed);
      const next = schedule.next(now);
      this.deps.log.info(
        { event: 'schedule_armed', task: task.name, cron: task.cron, timeZone: task.timeZone ?? 'UTC', next: next?.toISOString() ?? null, changed: current !== undefined },
        `${task.name} scheduled: ${task.cron} (${task.timeZone ?? 'UTC'})`,
      );
      if (next) this.#wait(armed, next);
    }
  }

  /** The schedules this supervisor keeps, with their next tick (what `prefork status` shows). */
  armed(): { name: string; cron: string; timeZone: string | null; nextAt: string | null; lastQueuedAt: string | null; skippedInARow: number; lastSkippedAt: string | null }[] {
    if (this.#stopped) return [];
    return [...this.#armed.values()].map(({ task, at, lastQueuedAt, skippedInARow, lastSkippedAt }) => ({
      name: task.name,
      cron: task.cron,
      timeZone: task.timeZone,
      nextAt: at?.toISOString() ?? null,
      lastQueuedAt: lastQueuedAt?.toISOString() ?? null,
      skippedInARow,
      lastSkippedAt: lastSkippedAt?.toISOString() ?? null,
    }));
  }

  /** No tick fires from now on (a statement in flight still completes). */
  stop(): void {
    this.#stopped = true;
    for (const armed of this.#armed.values()) clearTimeout(armed.timer);
    this.#armed.clear();
  }

  #disarm(armed: Armed): void {
    clearTimeout(armed.timer);
    armed.timer = undefined;
    if (this.#armed.get(armed.task.name) === armed) this.#armed.delete(armed.task.name);
  }

  #current(armed: Armed): boolean {
    return !this.#stopped && this.#armed.get(armed.task.name) === armed;
  }

  #wait(armed: Armed, tick: Date): void {
    if (!this.#current(armed)) return;
    armed.at = tick;
    armed.timer = setTimeout(
      () => {
        armed.timer = undefined;
        // A timer may fire a little early, and a far tick is waited for in steps.
        if (Date.now() < tick.getTime()) this.#wait(armed, tick);
        else this.deps.track(this.#fire(armed, tick));
      },
      Math.min(maxTimerMs, Math.max(0, tick.getTime() - Date.now())),
    );
  }

  async #fire(armed: Armed, due: Date): Promise<void> {
    if (!this.#current(armed)) return;
    const { task, schedule } = armed;
    // The latest tick that has come: those that passed while this one waited (a busy loop, a database outage) fold into it.
    const tick = schedule.latest(new Date(), new Date(due.getTime() - 1)) ?? due;
    const { log } = this.deps;
    try {
      const { fired, taskId } = await fireSchedule(this.deps.db, this.deps.schema, { name: task.name, cron: task.cron, tick, payload: { ...task.payload, scheduledAt: tick.toISOString() } });
      if (!fired) log.debug({ event: 'schedule_fired_elsewhere', task: task.name, tick: tick.toISOString() }, 'tick fired by another supervisor');
      else if (taskId) log.info({ event: 'schedule_fired', task: task.name, tick: tick.toISOString(), taskId }, `${task.name} queued for ${tick.toISOString()}`);
      else log.warn({ event: 'schedule_skipped', task: task.name, tick: tick.toISOString() }, `${task.name}: tick skipped, the previous run is still queued or running`);
      if (fired && taskId) {
        armed.lastQueuedAt = tick;
        armed.skippedInARow = 0;
      } else if (fired) {
        armed.skippedInARow += 1;
        armed.lastSkippedAt = tick;
      }
      if (fired) this.deps.onTick?.({ name: task.name, outcome: taskId ? 'queued' : 'skipped' });
    } catch (error) {
      log.warn({ event: 'schedule_fire_failed', task: task.name, tick: tick.toISOString(), err: error }, `could not queue ${task.name}; trying again in 1 s`);
      this.deps.onTick?.({ name: task.name, outcome: 'failed' });
      if (!this.#current(armed)) return;
      armed.timer = setTimeout(() => {
        armed.timer = undefined;
        this.deps.track(this.#fire(armed, tick));
      }, retryMs);
      return;
    }
    const next = schedule.next(tick);
    if (next) this.#wait(armed, next);
    else if (this.#current(armed)) armed.at = null;
  }
}

/** Whether two definitions of a task's schedule fire the same ticks with the same payload. */
function sameSchedule(a: TaskSchedule, b: TaskSchedule): boolean {
  return a.cron === b.cron && a.timeZone === b.timeZone && JSON.stringify(a.payload) === JSON.stringify(b.payload);
}
