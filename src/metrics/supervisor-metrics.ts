/**
 * The primary's Prometheus metrics: task outcomes and durations from the supervisor's events, workers and
 * database connections from its snapshot, the queue from the database, and Node's process metrics. Gauges are
 * read on scrape, so nothing here runs between scrapes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Supervisor } from '../primary/supervisor.js';
import type { TaskFinished } from '../primary/outcomes.js';
import type { ScheduleTick } from '../primary/scheduler.js';
import { taskStates } from '../queue/task-row.js';
import type { QueueDepth } from './queue-depth.js';

/** What the metrics need of a supervisor (a structural subset, so tests can hand in a fake). */
export type MetricsSource = Pick<Supervisor, 'snapshot' | 'on' | 'off'>;

/** Seconds: from 5 ms (echo-like tasks) to an hour (reports, LLM calls). */
export const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

const workerStates = ['starting', 'waiting_for_database', 'ready', 'draining', 'stopping', 'exited'];
const outcomes = ['succeeded', 'retried', 'failed', 'timed_out', 'cancelled'];

export class SupervisorMetrics {
  readonly registry = new Registry();
  #source: MetricsSource | undefined;
  #queue: QueueDepth | undefined;
  #detach: (() => void) | undefined;
  readonly #tasks: Counter<'task' | 'outcome'>;
  readonly #durations: Histogram<'task'>;
  readonly #workerExits: Counter<'crashed'>;
  readonly #scheduleTicks: Counter<'task' | 'outcome'>;
  readonly #startupFailures: Counter;
  readonly #reloads: Counter<'outcome'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#tasks = new Counter({
      name: 'prefork_tasks_total',
      help: 'Task attempts that ended, by task name and outcome (succeeded, retried, failed, timed_out, cancelled)',
      labelNames: ['task', 'outcome'],
      registers,
    });
    this.#durations = new Histogram({
      name: 'prefork_task_duration_seconds',
      help: 'Duration of task attempts, from hand-over to a worker to the outcome, by task name',
      labelNames: ['task'],
      buckets: durationBuckets,
      registers,
    });
    this.#workerExits = new Counter({
      name: 'prefork_worker_exits_total',
      help: 'Worker processes that exited; crashed="true" when not asked to (the supervisor forks a replacement)',
      labelNames: ['crashed'],
      registers,
    });
    for (const crashed of ['true', 'false']) this.#workerExits.inc({ crashed }, 0);
    this.#scheduleTicks = new Counter({
      name: 'prefork_schedule_ticks_total',
      help: 'Ticks of task schedules this supervisor handled, by task name and outcome: queued, skipped (the last run was not done), failed (the database did not answer; tried again)',
      labelNames: ['task', 'outcome'],
      registers,
    });
    this.#startupFailures = new Counter({
      name: 'prefork_worker_startup_failures_total',
      help: 'Workers that could not start (the task module does not load, a start-up hook failed): alert on a broken deploy',
      registers,
    });
    this.#reloads = new Counter({
      name: 'prefork_reloads_total',
      help: 'Reloads (prefork reload, SIGHUP) that ended, by outcome: succeeded, or failed (a new worker could not start; the old ones went on)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['succeeded', 'failed']) this.#reloads.inc({ outcome }, 0);
    const snapshot = () => this.#source?.snapshot();
    new Gauge({
      name: 'prefork_workers',
      help: 'Worker processes by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const state of workerStates) this.set({ state }, 0);
        for (const w of snapshot()?.workers ?? []) this.inc({ state: w.state });
      },
    });
    new Gauge({
      name: 'prefork_workers_wanted',
      help: 'Worker processes the supervisor keeps running (--workers, or the last scale)',
      registers,
      collect() {
        this.set(snapshot()?.workersWanted ?? 0);
      },
    });
    new Gauge({
      name: 'prefork_tasks_running',
      help: 'Tasks running in the workers now',
      registers,
      collect() {
        this.set((snapshot()?.workers ?? []).reduce((n, w) => n + w.current.length, 0));
      },
    });
    new Gauge({
      name: 'prefork_task_paused',
      help: 'Task names paused (prefork pause), 1 each, as this supervisor last read them: their tasks wait queued',
      labelNames: ['task'],
      registers,
      collect() {
        this.reset();
        for (const task of snapshot()?.paused ?? []) this.set({ task }, 1);
      },
    });
    const connections = (name: string, help: string, pick: (c: { inUse: number; limit: number; waiting: number; peak: number }) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const c = snapshot()?.dbConnections;
          this.set(c ? pick(c) : 0);
        },
      });
    connections('prefork_db_connections_in_use', 'Task database connections open now, across all workers (while the budget is not enforced: those open longer than 0.2 s)', (c) => c.inUse);
    connections('prefork_db_connections_limit', 'Task database connections allowed at once (--max-db-connections, or derived from max_connections)', (c) => c.limit);
    connections('prefork_db_connections_waiting', 'Tasks waiting for a database connection slot', (c) => c.waiting);
    connections('prefork_db_connections_peak', 'Most task database connections open at once since start', (c) => c.peak);
    const queue = () => this.#queue;
    new Gauge({
      name: 'prefork_queue_tasks',
      help: 'Tasks in the queue table by state (finished ones until --keep-finished deletes them); absent when the database does not answer',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await queue()?.read();
        this.reset();
        if (!counts) return;
        for (const state of taskStates) this.set({ state }, counts[state]);
      },
    });
  }

  /** Counts this supervisor's events from now on and reads its snapshot (and the queue) on scrape. */
  attach(source: MetricsSource, queue?: QueueDepth): void {
    this.#detach?.();
    this.#source = source;
    this.#queue = queue;
    const onFinished = (f: TaskFinished) => this.observeTask(f);
    const onExit = (e: { crashed: boolean }) => this.#workerExits.inc({ crashed: String(e.crashed) });
    const onTick = (t: ScheduleTick) => this.#scheduleTicks.inc({ task: t.name, outcome: t.outcome });
    const onStartupFailed = () => this.#startupFailures.inc();
    const onReload = (r: { outcome: 'succeeded' | 'failed' }) => this.#reloads.inc({ outcome: r.outcome });
    source.on('taskFinished', onFinished);
    source.on('workerExited', onExit);
    source.on('scheduleTick', onTick);
    source.on('workerStartupFailed', onStartupFailed);
    source.on('reloadEnded', onReload);
    this.#detach = () => {
      source.off('taskFinished', onFinished);
      source.off('workerExited', onExit);
      source.off('scheduleTick', onTick);
      source.off('workerStartupFailed', onStartupFailed);
      source.off('reloadEnded', onReload);
    };
  }

  observeTask(f: Pick<TaskFinished, 'name' | 'outcome' | 'durationMs'>): void {
    if (!outcomes.includes(f.outcome)) return;
    this.#tasks.inc({ task: f.name, outcome: f.outcome });
    this.#durations.observe({ task: f.name }, f.durationMs / 1000);
  }

  async close(): Promise<void> {
    this.#detach?.();
    this.#detach = undefined;
    await this.#queue?.close();
  }
}
