/**
 * Scheduled tasks: the primary fires each tick of the schedules its task module declares (`defineTask({
 * schedule })`). Every supervisor that offers the task keeps the timers; the database decides which one adds
 * the tick's task (queue/fire-schedule.ts), so a tick makes one task however many supervisors run.
 *
 * Ticks are fired from the supervisor's start on: one that passed while no supervisor ran is not made up. A
 * tick that finds the database unreachable is tried again every second, and ticks that pass meanwhile fold
 * into the latest one.
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

export class Scheduler {
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Each scheduled task's next tick, for the status snapshot. */
  readonly #next = new Map<string, { task: ScheduledTask; at: Date | null }>();
  #stopped = false;

  constructor(private readonly deps: SchedulerDeps) {}

  start(tasks: readonly ScheduledTask[]): void {
    const now = new Date();
    for (const task of tasks) {
      const schedule = CronSchedule.parse(task.cron, task.timeZone);
      const next = schedule.next(now);
      this.deps.log.info(
        { event: 'schedule_armed', task: task.name, cron: task.cron, timeZone: task.timeZone ?? 'UTC', next: next?.toISOString() ?? null },
        `${task.name} scheduled: ${task.cron} (${task.timeZone ?? 'UTC'})`,
      );
      if (next) this.#wait(task, schedule, next);
      else this.#next.set(task.name, { task, at: null });
    }
  }

  /** The schedules this supervisor keeps, with their next tick (what `prefork status` shows). */
  armed(): { name: string; cron: string; timeZone: string | null; nextAt: string | null }[] {
    if (this.#stopped) return [];
    return [...this.#next].map(([name, n]) => ({ name, cron: n.task.cron, timeZone: n.task.timeZone, nextAt: n.at?.toISOString() ?? null }));
  }

  /** No tick fires from now on (a statement in flight still completes). */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #wait(task: ScheduledTask, schedule: CronSchedule, tick: Date): void {
    if (this.#stopped) return;
    this.#next.set(task.name, { task, at: tick });
    const timer = setTimeout(
      () => {
        this.#timers.delete(timer);
        // A timer may fire a little early, and a far tick is waited for in steps.
        if (Date.now() < tick.getTime()) this.#wait(task, schedule, tick);
        else this.deps.track(this.#fire(task, schedule, tick));
      },
      Math.min(maxTimerMs, Math.max(0, tick.getTime() - Date.now())),
    );
    this.#timers.add(timer);
  }

  async #fire(task: ScheduledTask, schedule: CronSchedule, due: Date): Promise<void> {
    if (this.#stopped) return;
    // The latest tick that has come: those that passed while this one waited (a busy loop, a database outage) fold into it.
    const tick = schedule.latest(new Date(), new Date(due.getTime() - 1)) ?? due;
    const { log } = this.deps;
    try {
      const { fired, taskId } = await fireSchedule(this.deps.db, this.deps.schema, { name: task.name, cron: task.cron, tick, payload: { ...task.payload, scheduledAt: tick.toISOString() } });
      if (!fired) log.debug({ event: 'schedule_fired_elsewhere', task: task.name, tick: tick.toISOString() }, 'tick fired by another supervisor');
      else if (taskId) log.info({ event: 'schedule_fired', task: task.name, tick: tick.toISOString(), taskId }, `${task.name} queued for ${tick.toISOString()}`);
      else log.warn({ event: 'schedule_skipped', task: task.name, tick: tick.toISOString() }, `${task.name}: tick skipped, the previous run is still queued or running`);
      if (fired) this.deps.onTick?.({ name: task.name, outcome: taskId ? 'queued' : 'skipped' });
    } catch (error) {
      log.warn({ event: 'schedule_fire_failed', task: task.name, tick: tick.toISOString(), err: error }, `could not queue ${task.name}; trying again in 1 s`);
      this.deps.onTick?.({ name: task.name, outcome: 'failed' });
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.deps.track(this.#fire(task, schedule, tick));
      }, retryMs);
      this.#timers.add(timer);
      return;
    }
    const next = schedule.next(tick);
    if (next) this.#wait(task, schedule, next);
    else this.#next.set(task.name, { task, at: null });
  }
}
