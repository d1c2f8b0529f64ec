/**
 * The client API: how an application queues tasks and waits for their outcome.
 *
 *   const prefork = new Client({ connectionString: process.env.DATABASE_URL });
 *   const id = await prefork.send('report.build', { userId: 7 });
 *   const task = await prefork.result(id, { timeoutMs: 30_000 });
 *   const same = await prefork.run('report.build', { userId: 7 }, { timeoutMs: 30_000 }); // send + result
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { assertSchemaName } from '../db/identifiers.js';
import { migrate } from '../db/migrate.js';
import { PreforkError } from '../errors.js';
import { addTask, type AddTaskOptions } from '../queue/add-task.js';
import { assertListFilter, assertPauseReason, assertRetryAttempts, assertTaskId, assertTaskName, assertTimeout, checkNewTask } from '../queue/task-input.js';
import { pauseTasks, resumeTasks, type PauseOutcome, type ResumeOutcome } from '../queue/paused-tasks.js';
import { addSubmitted } from '../queue/add-submitted.js';
import { addTasks, type NewTask } from '../queue/add-tasks.js';
import { cancelTask, type CancelOutcome } from '../queue/cancel-task.js';
import { getTask } from '../queue/read-tasks.js';
import { listTasks, type TaskListFilter } from '../queue/list-tasks.js';
import { retryTasks, type RetryOutcome } from '../queue/retry-tasks.js';
import { TaskWaiter } from '../queue/task-waiter.js';
import { toTaskView, type TaskView } from '../queue/task-view.js';
import type { TaskDefinition, TaskHandler } from '../task.js';
import { DirectChannel, runDirect } from './direct-channel.js';
import { toQueryable, type Executor } from './queryable-adapter.js';

/** How long a client that found no supervisor socket on this host goes through the database before looking again. */
const rediscoverMs = 5_000;

export interface ClientOptions {
  /** Either a connection string (the client opens a small pool of its own)… */
  connectionString?: string;
  /** …or the application's pg.Pool (not closed by `close()`). */
  pool?: pg.Pool;
  /** The queue's schema (default `prefork`). */
  schema?: string;
  /**
   * `run()` hands tasks to a supervisor on this machine over its Unix socket when one runs (default true;
   * false: always through the database).
   */
  direct?: boolean;
}

export interface SendOptions extends AddTaskOptions {
  /** Run the insert on this connection or transaction (a pg client, or Kysely): the task exists only if it commits. */
  db?: Executor;
}

export interface RunOptions extends AddTaskOptions {
  /** Reject with code TIMEOUT when the task is not final after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The payload type a task module declares for `name`. */
export type PayloadOf<T> = T extends TaskDefinition<infer P, unknown> ? P : T extends TaskHandler<infer P, unknown> ? P : unknown;
/** The result type a task module declares for `name`. */
export type ResultOf<T> = T extends TaskDefinition<unknown, infer R> ? Awaited<R> : T extends TaskHandler<never, infer R> ? Awaited<R> : unknown;

export interface TypedTaskView<R> extends Omit<TaskView, 'result'> {
  result: R | null;
}

/**
 * `Client<typeof tasks>` (with `import type tasks from './tasks.js'`) types payloads and results by task name.
 */
export class Client<Tasks extends Record<string, unknown> = Record<string, unknown>> implements AsyncDisposable {
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  #ready: Promise<void> | undefined;
  #waiter: Promise<{ waiter: TaskWaiter; client: pg.PoolClient }> | undefined;
  #closed = false;
  readonly #directEnabled: boolean;
  #direct: { channel: Promise<DirectChannel | null>; at: number } | undefined;

  constructor(options: ClientOptions) {
    this.schema = assertSchemaName(options.schema ?? 'prefork');
    this.#directEnabled = options.direct !== false;
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else if (options.connectionString) {
      this.#pool = new pg.Pool({ connectionString: options.connectionString, max: 4, application_name: 'prefork client' });
      this.#pool.on('error', () => {});
      this.#ownsPool = true;
    } else {
      throw new PreforkError('INVALID_OPTION', 'new Client() needs a connectionString or a pool', { exitCode: 2 });
    }
  }

  /** Queues a task; returns its id (with `key`, the id of a queued or running task with that key, if any). */
  async send<K extends keyof Tasks & string>(task: K, payload?: PayloadOf<Tasks[K]>, options: SendOptions = {}): Promise<string> {
    const { db, ...addOptions } = options;
    if (!db) await this.#migrated();
    const added = await addTask(db ? toQueryable(db) : this.#pool, this.schema, task, payload === undefined ? {} : payload, addOptions);
    return added.id;
  }

  /**
   * Queues a task and waits for its final state: `send()` then `result()`, in one step. When a supervisor of
   * this schema runs on this machine, the task goes to it over its Unix socket: inserted already claimed (one
   * commit), run at once and its outcome sent back as soon as it is recorded, without LISTEN/NOTIFY in between.
   * Everything else (no such supervisor, a task queued behind others or retried) goes through the database.
   */
  async run<K extends keyof Tasks & string>(task: K, payload?: PayloadOf<Tasks[K]>, options: RunOptions = {}): Promise<TypedTaskView<ResultOf<Tasks[K]>>> {
    const { timeoutMs, signal, ...addOptions } = options;
    assertTimeout(timeoutMs);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const left = () => (deadline === undefined ? undefined : Math.max(0, deadline - Date.now()));
    checkNewTask(task, payload, addOptions); // bad input is refused here, whichever way the task then goes
    await this.#migrated();
    const channel = addOptions.runAt || addOptions.delayMs ? null : await this.#directChannel(task);
    if (!channel) return this.result<K>(await this.send(task, payload, addOptions), { timeoutMs: left(), signal });
    const submission = randomUUID();
    const { queue, priority, maxAttempts, key } = addOptions;
    const direct = await runDirect(
      channel,
      { submission, name: task, payload: payload === undefined ? {} : payload, queue, priority, maxAttempts, key },
      { timeoutMs: left(), signal, read: (id) => getTask(this.#pool, this.schema, id) },
    );
    if (direct.view) return direct.view as TypedTaskView<ResultOf<Tasks[K]>>;
    // Through the database: the submission id finds the task a lost answer was about, or inserts it.
    const id = direct.id ?? (await addSubmitted(this.#pool, this.schema, submission, task, payload === undefined ? {} : payload, addOptions)).id;
    return this.result<K>(id, { timeoutMs: left(), signal });
  }

  /** Queues many tasks in one statement; returns their ids in order. */
  async sendMany(tasks: readonly NewTask[], options: { db?: Executor } = {}): Promise<string[]> {
    if (!options.db) await this.#migrated();
    return addTasks(options.db ? toQueryable(options.db) : this.#pool, this.schema, tasks);
  }

  async get<K extends keyof Tasks & string>(id: string, _task?: K): Promise<TypedTaskView<ResultOf<Tasks[K]>> | null> {
    assertTaskId(id);
    await this.#migrated();
    const row = await getTask(this.#pool, this.schema, id);
    return row ? (toTaskView(row) as TypedTaskView<ResultOf<Tasks[K]>>) : null;
  }

  /**
   * Waits until the task reaches a final state (succeeded, failed, timed_out, cancelled) and returns it.
   * Woken by LISTEN/NOTIFY; rejects with code TIMEOUT after `timeoutMs`, or when `signal` aborts.
   */
  async result<K extends keyof Tasks & string>(id: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TypedTaskView<ResultOf<Tasks[K]>>> {
    assertTaskId(id);
    assertTimeout(options.timeoutMs);
    await this.#migrated();
    const { waiter } = await this.#listening();
    const { row, final } = await waiter.wait(id, { timeoutMs: options.timeoutMs, signal: options.signal });
    if (!row) throw new PreforkError('NOT_FOUND', `no task with id ${id}`);
    if (!final) {
      if (options.signal?.aborted) throw new PreforkError('ABORTED', `stopped waiting for task ${id}: the signal aborted`, { cause: options.signal.reason });
      throw new PreforkError('TIMEOUT', `task ${id} is still ${row.state} after ${options.timeoutMs} ms`);
    }
    return toTaskView(row) as TypedTaskView<ResultOf<Tasks[K]>>;
  }

  /** Cancels a task: a queued one never runs; a running one has its signal aborted (then its hard limit applies). */
  async cancel(id: string): Promise<CancelOutcome> {
    assertTaskId(id);
    await this.#migrated();
    return cancelTask(this.#pool, this.schema, id);
  }

  /**
   * Queues a task that failed, timed out or was cancelled again, due now, with `attempts` more attempts (default 1).
   * 'retried' | 'not_found' | 'succeeded' (not retried) | 'not_finished' (queued or running) | 'key_in_use' (a
   * queued or running task holds its key).
   */
  async retry(id: string, options: { attempts?: number } = {}): Promise<RetryOutcome> {
    assertTaskId(id);
    const attempts = options.attempts ?? 1;
    assertRetryAttempts(attempts);
    await this.#migrated();
    const [outcome] = await retryTasks(this.#pool, this.schema, [id], attempts);
    return outcome?.outcome ?? 'not_found';
  }

  /**
   * Pauses a task name on every supervisor: its tasks wait queued (running ones finish) until resume().
   * 'paused' | 'already_paused'.
   */
  async pause(name: string, options: { reason?: string } = {}): Promise<PauseOutcome> {
    assertTaskName(name);
    assertPauseReason(options.reason);
    await this.#migrated();
    const [result] = await pauseTasks(this.#pool, this.schema, [name], options.reason ?? null);
    return result!.outcome;
  }

  /** Lets every supervisor start tasks of a paused name again. 'resumed' | 'not_paused'. */
  async resume(name: string): Promise<ResumeOutcome> {
    assertTaskName(name);
    await this.#migrated();
    const [result] = await resumeTasks(this.#pool, this.schema, [name]);
    return result!.outcome;
  }

  /** The newest tasks first, by state, task name and queue; `before` (an id) pages on. At most `limit` (default 50). */
  async list(filter: TaskListFilter = {}): Promise<{ tasks: TaskView[]; more: boolean }> {
    assertListFilter(filter);
    await this.#migrated();
    const { rows, more } = await listTasks(this.#pool, this.schema, filter);
    return { tasks: rows.map(toTaskView), more };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    (await this.#direct?.channel.catch(() => null))?.close();
    const listening = await this.#waiter?.catch(() => undefined);
    if (listening) {
      await listening.waiter.close();
      listening.client.release();
    }
    if (this.#ownsPool) await this.#pool.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #migrated(): Promise<void> {
    this.#ready ??= (async () => {
      const client = await this.#pool.connect();
      try {
        await migrate(client, this.schema);
      } finally {
        client.release();
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** The connection to a local supervisor's socket, looked for again when it closed or after a while without one. */
  async #directChannel(taskName: string): Promise<DirectChannel | null> {
    if (!this.#directEnabled || this.#closed) return null;
    const cached = this.#direct;
    if (cached) {
      const channel = await cached.channel;
      if (channel?.open) return channel;
      if (channel === null && Date.now() - cached.at < rediscoverMs) return null;
      if (this.#direct !== cached) return this.#directChannel(taskName);
    }
    const channel = DirectChannel.open(this.#pool, this.schema, taskName).catch(() => null);
    this.#direct = { channel, at: Date.now() };
    return channel;
  }

  #listening(): Promise<{ waiter: TaskWaiter; client: pg.PoolClient }> {
    this.#waiter ??= (async () => {
      const client = await this.#pool.connect();
      try {
        return { waiter: await TaskWaiter.listen(client as unknown as pg.Client, this.schema), client };
      } catch (error) {
        client.release();
        throw error;
      }
    })().catch((error: unknown) => {
      this.#waiter = undefined;
      throw error;
    });
    return this.#waiter;
  }
}

