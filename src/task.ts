/** What task authors write: handlers, their options, and the context each attempt receives. */
import type { Kysely, sql, Transaction } from 'kysely';
import type pg from 'pg';
import type { Logger } from 'pino';
import { taskSessionOverrideKeys, type TaskSessionOverrides } from './db/session-settings.js';
import type { TransactionOptions } from './db/transaction.js';
import { PreforkError } from './errors.js';
import { assertOptionKeys, payloadJson } from './queue/task-input.js';
import { CronSchedule } from './schedule/cron.js';
import type { AddTaskOptions } from './queue/add-task.js';
import type { Executor } from './client/queryable-adapter.js';

export interface TaskContext {
  /** The task's id in the queue (a bigint, as a string). */
  taskId: string;
  name: string;
  /** This attempt's number, from 1. */
  attempt: number;
  maxAttempts: number;
  /**
   * Aborted when the task is cancelled, passes its soft time limit, or the supervisor stops. The connection
   * (`db`, `transaction`) still works after it, for a clean-up; only the hard limit ends it.
   */
  signal: AbortSignal;
  /** A child logger carrying taskId, task name, attempt and worker. */
  log: Logger;
  /**
   * Kysely over this attempt's own connection: opened on the first query, closed when the task settles.
   * Never shared with another task, never pooled.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>;
  /**
   * kysely's `sql` tag (`ctx.sql\`select ${x}\`.execute(ctx.db)`), from the kysely behind `ctx.db`: a task module
   * needs no kysely of its own, and cannot mix in another copy of it (another version among the application's
   * dependencies).
   */
  sql: typeof sql;
  /** The same connection as a raw `pg` client, opened on demand. */
  connection(): Promise<pg.Client>;
  /**
   * Runs `fn` in a transaction on this attempt's connection, rerunning it after a serialization failure, a
   * deadlock or a connection lost before commit (default 3 reruns); a connection lost during commit throws
   * COMMIT_OUTCOME_UNKNOWN and is never retried. Use `trx` inside `fn`, not `ctx.db`. Works after `ctx.signal`
   * aborted (a clean-up); stops at the hard limit, or on `options.signal`.
   */
  /**
   * Reports how far the task is (any JSON, at most 64 KiB: `{ step: 2, of: 4 }`), for `Client.get()`, `inspect`
   * and the result. Recorded a few times a second at most (the latest value wins); the value is copied now.
   * Throws INVALID_PROGRESS for a value that cannot be stored.
   */
  progress(value: unknown): void;
  /**
   * Queues another task (a follow-up: "email the roadmap once it is written") and returns its id, on this
   * attempt's own connection: inside `ctx.transaction` that is the transaction, so the follow-up is queued only if
   * it commits (a rerun queues it once). `{ db }` runs the insert on another executor instead.
   */
  send(task: string, payload?: unknown, options?: (AddTaskOptions & { db?: Executor }) | null): Promise<string>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  transaction<T>(fn: (trx: Transaction<any>, attempt: number) => Promise<T>, options?: TransactionOptions | null): Promise<T>;
  workerId: number;
}

export type TaskHandler<P = unknown, R = unknown> = (payload: P, ctx: TaskContext) => R | Promise<R>;

/** statementTimeoutMs, lockTimeoutMs, idleInTransactionTimeoutMs: this task's own, over the worker's defaults. */
export interface TaskOptions extends TaskSessionOverrides {
  /** Attempts before the task fails for good (crashes count). */
  maxAttempts?: number;
  /** Delay between attempts after an error. */
  backoff?: BackoffOptions;
  /** After this long, `ctx.signal` aborts: the handler may clean up and return. */
  softTimeoutMs?: number;
  /**
   * After this long the primary ends the attempt whatever the worker is doing: it cancels the task's query,
   * terminates its backend, then kills and replaces the worker. The attempt ends `timed_out`.
   */
  hardTimeoutMs?: number;
  /**
   * Queue this task on a schedule: a cron expression in UTC (`'0 3 * * *'`, six fields for seconds, `@daily`),
   * or `{ cron, payload, timeZone }` (an IANA name: `'Europe/Berlin'`). Each tick's payload is `payload` with
   * `scheduledAt` (the tick, ISO). A tick whose previous run is still queued or running is skipped.
   */
  schedule?: string | { cron: string; payload?: Record<string, unknown>; timeZone?: string };
  /**
   * At most this many attempts of this task run at once, across every worker of every supervisor on the
   * database (an API that allows so many concurrent requests, a job that must not run twice at a time: 1).
   */
  maxRunning?: number;
  /**
   * At most `count` attempts of this task start in any `intervalMs`, across all supervisors (a sliding window:
   * `{ count: 60, intervalMs: 60_000 }` for an API's 60 requests a minute). Retries count; tasks wait queued.
   */
  rateLimit?: RateLimit;
}

/** At most `count` attempts start in any `intervalMs` (defineTask's `rateLimit`). */
export interface RateLimit {
  count: number;
  intervalMs: number;
}

/** A task's schedule as the primary keeps it (`timeZone` null: UTC). */
export interface TaskSchedule {
  cron: string;
  payload: Record<string, unknown>;
  timeZone: string | null;
}

export type BackoffOptions =
  | { type: 'exponential'; baseMs?: number; maxMs?: number }
  | { type: 'fixed'; delayMs: number }
  | { type: 'none' };

const definitionBrand = Symbol.for('prefork.taskDefinition');

export interface TaskDefinition<P = unknown, R = unknown> extends TaskOptions {
  readonly [definitionBrand]: true;
  run: TaskHandler<P, R>;
}

/**
 * The keys defineTask takes, in the README's order. A key not here is refused: a typo (`hardTimeout` for
 * `hardTimeoutMs`) would otherwise drop the protection it meant to set. Typed as a record so that an option added
 * to TaskOptions cannot be forgotten here.
 */
const optionKeys = Object.keys({
  maxAttempts: true,
  backoff: true,
  softTimeoutMs: true,
  hardTimeoutMs: true,
  statementTimeoutMs: true,
  lockTimeoutMs: true,
  idleInTransactionTimeoutMs: true,
  schedule: true,
  maxRunning: true,
  rateLimit: true,
  run: true,
} satisfies Record<keyof TaskOptions | 'run', true>);

/** The keys of each backoff type, checked as the options are. */
const backoffKeys: Record<string, readonly string[]> = { exponential: ['type', 'baseMs', 'maxMs'], fixed: ['type', 'delayMs'], none: ['type'] };

/** The database keeps the claim times of one rate window per task: this many at most. */
const maxRateCount = 10_000;

/** The longest timer Node keeps: a longer one fires after 1 ms (and a hard limit would kill the task at once). */
const maxTimerMs = 2_147_483_647;

/**
 * A task with typed payload and result and its own options. The options are checked here, at import, so a bad
 * one stops the worker's start with its message (INVALID_OPTION) instead of acting oddly later.
 */
export function defineTask<P = unknown, R = unknown>(definition: TaskOptions & { run: TaskHandler<P, R> }): TaskDefinition<P, R> {
  const invalid = (message: string) => new PreforkError('INVALID_OPTION', `defineTask: ${message}`, { exitCode: 2 });
  const whole = (key: string, value: unknown, min: number, max: number, unit = '') => {
    if (value !== undefined && !(typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max)) {
      throw invalid(`${key} must be a whole number${unit} from ${min} to ${max} (got ${String(value)})`);
    }
  };
  if (typeof definition === 'object') assertOptionKeys(definition, optionKeys, 'defineTask: ');
  if (typeof definition?.run !== 'function') throw invalid('run must be a function');
  for (const key of taskSessionOverrideKeys) whole(key, definition[key], 0, maxTimerMs, ' of milliseconds');
  whole('maxAttempts', definition.maxAttempts, 1, 1_000_000);
  whole('softTimeoutMs', definition.softTimeoutMs, 1, maxTimerMs, ' of milliseconds');
  whole('hardTimeoutMs', definition.hardTimeoutMs, 1, maxTimerMs, ' of milliseconds');
  const backoff = definition.backoff as Record<string, unknown> | undefined;
  if (backoff !== undefined) {
    if (backoff === null || typeof backoff !== 'object') throw invalid("backoff must be { type: 'exponential' | 'fixed' | 'none', ... }");
    if (typeof backoff.type === 'string' && Object.hasOwn(backoffKeys, backoff.type)) {
      assertOptionKeys(backoff, backoffKeys[backoff.type]!, `defineTask: backoff { type: '${backoff.type}' }: `);
    }
    if (backoff.type === 'exponential') {
      // Waited in the database (run_at), not on a timer: any whole number of milliseconds.
      whole('backoff.baseMs', backoff.baseMs, 0, Number.MAX_SAFE_INTEGER, ' of milliseconds');
      whole('backoff.maxMs', backoff.maxMs, 0, Number.MAX_SAFE_INTEGER, ' of milliseconds');
    } else if (backoff.type === 'fixed') {
      if (backoff.delayMs === undefined) throw invalid("backoff { type: 'fixed' } needs delayMs");
      whole('backoff.delayMs', backoff.delayMs, 0, Number.MAX_SAFE_INTEGER, ' of milliseconds');
    } else if (backoff.type !== 'none') {
      throw invalid(`backoff.type must be 'exponential', 'fixed' or 'none' (got ${String(backoff.type)})`);
    }
  }
  if (definition.schedule !== undefined) checkSchedule(definition.schedule, invalid);
  whole('maxRunning', definition.maxRunning, 1, 1_000_000);
  const rate = definition.rateLimit as Record<string, unknown> | undefined;
  if (rate !== undefined) {
    if (rate === null || typeof rate !== 'object' || rate.count === undefined || rate.intervalMs === undefined) {
      throw invalid('rateLimit must be { count, intervalMs }');
    }
    assertOptionKeys(rate, ['count', 'intervalMs'], 'defineTask: rateLimit: ');
    whole('rateLimit.count', rate.count, 1, maxRateCount);
    whole('rateLimit.intervalMs', rate.intervalMs, 1, maxTimerMs, ' of milliseconds');
  }
  return { ...definition, [definitionBrand]: true };
}

function checkSchedule(schedule: unknown, invalid: (message: string) => PreforkError): void {
  const { cron, timeZone, payload } = (typeof schedule === 'string' ? { cron: schedule } : (schedule ?? {})) as Record<string, unknown>;
  if (typeof cron !== 'string') throw invalid('schedule must be a cron expression or { cron, payload, timeZone }');
  if (typeof schedule === 'object') assertOptionKeys(schedule, ['cron', 'payload', 'timeZone'], 'defineTask: schedule: ');
  if (timeZone !== undefined && typeof timeZone !== 'string') throw invalid('schedule.timeZone must be an IANA time zone name, such as Europe/Berlin');
  try {
    CronSchedule.parse(cron, timeZone);
  } catch (error) {
    throw invalid(`schedule: ${(error as Error).message}`);
  }
  if (payload === undefined) return;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw invalid('schedule.payload must be an object (each tick adds scheduledAt to it)');
  }
  try {
    payloadJson(payload, 'schedule.payload');
  } catch (error) {
    throw invalid((error as Error).message);
  }
}

/** A task's schedule as the primary keeps it, or undefined. */
export function scheduleOf(d: TaskOptions): TaskSchedule | undefined {
  if (d.schedule === undefined) return undefined;
  if (typeof d.schedule === 'string') return { cron: d.schedule, payload: {}, timeZone: null };
  return { cron: d.schedule.cron, payload: d.schedule.payload ?? {}, timeZone: d.schedule.timeZone ?? null };
}

export function isTaskDefinition(value: unknown): value is TaskDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[definitionBrand] === true;
}

/** A task module's default export: task names mapped to handlers or definitions. */
export type TaskList = Record<string, TaskHandler<never, unknown> | TaskDefinition<never, unknown>>;
