/**
 * The client API: how an application queues tasks and waits for their outcome.
 *
 *   const prefork = new Client({ connectionString: process.env.DATABASE_URL });
 *   const id = await prefork.send('report.build', { userId: 7 });
 *   const task = await prefork.result(id, { timeoutMs: 30_000 });
 *   const same = await prefork.run('report.build', { userId: 7 }, { timeoutMs: 30_000 }); // send + result
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import { assertSchemaName } from '../db/identifiers.js';
import { migrate } from '../db/migrate.js';
import { createPool, endPool } from '../db/pool.js';
import { PreforkError } from '../errors.js';
import { classifyDatabaseError } from '../db/error-classification.js';
import { addTask, type AddTaskOptions } from '../queue/add-task.js';
import { addOptionKeys, payloadOrEmpty, assertListFilter, assertNoNul, assertOptionKeys, assertPauseReason, assertRetryAttempts, assertSignal, assertTaskId, assertTaskName, assertTimeout, checkNewTask } from '../queue/task-input.js';
import { connectionUrlProblem, databaseUnreachable, errorText, redactConnectionString } from '../db/connection-string.js';
import { retryTransient, sanitized, type ConnectRetryPolicy, type RetryFailure } from '../db/connect-with-retry.js';
import { pauseTasks, resumeTasks, type PauseOutcome, type ResumeOutcome } from '../queue/paused-tasks.js';
import { addSubmitted } from '../queue/add-submitted.js';
import { addTasks, type NewTask } from '../queue/add-tasks.js';
import { cancelTask, type CancelOutcome } from '../queue/cancel-task.js';
import { getTaskNameAndState, getTaskSummary } from '../queue/read-tasks.js';
import { listTasks, type TaskListFilter } from '../queue/list-tasks.js';
import { retryTasks, type RetryOutcome } from '../queue/retry-tasks.js';
import { TaskWaiter } from '../queue/task-waiter.js';
import { toTaskView, type TaskView } from '../queue/task-view.js';
import type { TaskSummaryRow } from '../queue/task-row.js';
import type { TaskDefinition, TaskHandler } from '../task.js';
import { DirectChannel, runDirect } from './direct-channel.js';
import { assertExecutor, sendOptions, toQueryable, type Executor } from './queryable-adapter.js';

/** Per connection attempt of the client's own pool. */
const connectTimeoutMs = 10_000;

/**
 * Opening a connection of the client's own (its pool's, its listener's, the first call's) is retried while it fails
 * transiently (refused, reset, the server starting or stopping, too many connections): retries begin for up to
 * 5 s (8 at most). Nothing was sent on a connection that did not open, so no task can be queued twice by it.
 * Shorter than a worker's (connect-with-retry.ts): an application's request waits on it.
 */
const clientConnectRetry: ConnectRetryPolicy = { retries: 8, maxElapsedMs: 5_000, baseDelayMs: 250, maxDelayMs: 2_000 };

/** A wait (result(), run()) that cannot reach the database past a connect's retries tries again this often, until its timeout. */
const unreachableRetryMs = 1_000;

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
  /**
   * Retries of a connection that fails to open transiently (default `{ retries: 8, maxElapsedMs: 5000 }`: no retry
   * begins after 5 s; `maxElapsedMs: 0`, no time bound); `false`: none, the call fails at once. A wait (result(),
   * run() once its task is queued) that still cannot reach the database tries again every second until its
   * timeout. Applies to the connections the client opens: with `pool`, to those it opens outside it (the first
   * call's and the listener's), not to the pool's own.
   */
  connectRetry?: false | { retries?: number; maxElapsedMs?: number };
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
/**
 * The result type a task module declares for `name`. The payload is matched as `never`: it is a parameter of
 * `run`, so under strictFunctionTypes a definition of `{ a: number }` does not extend one of `unknown`.
 */
export type ResultOf<T> = T extends TaskDefinition<never, infer R> ? Awaited<R> : T extends TaskHandler<never, infer R> ? Awaited<R> : unknown;

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
  #waiter: Promise<Listening> | undefined;
  #closed = false;
  /**
   * The stop signals of the calls in progress, aborted by close(): every wait ends with CLIENT_CLOSED before the
   * connections are given back. A set, not listeners on one shared signal: Node warns past 10 listeners, and an
   * application may well have more calls than that in flight.
   */
  readonly #stops = new Set<AbortController>();
  /** Calls in progress, which close() lets end before it releases what they use. */
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #directEnabled: boolean;
  readonly #connectRetry: ConnectRetryPolicy | undefined;
  /** Aborted by close(): a connect retry in progress ends with CLIENT_CLOSED. */
  readonly #closing = new AbortController();
  #direct: { channel: Promise<DirectChannel | null>; at: number } | undefined;

  constructor(options: ClientOptions) {
    if (typeof options !== 'object' || options === null) throw invalidOption('new Client() needs an options object: { connectionString } or { pool }');
    assertOptionKeys(options, ['connectionString', 'pool', 'schema', 'direct', 'connectRetry']);
    this.schema = assertSchemaName(options.schema ?? 'prefork');
    if (options.direct !== undefined && options.direct !== null && typeof options.direct !== 'boolean') throw invalidOption(`direct must be true or false (got ${JSON.stringify(options.direct) ?? typeof options.direct})`);
    this.#directEnabled = options.direct !== false;
    // One would be silently ignored: the pool wins, and the application may think it reaches the other database.
    if (options.pool != null && options.connectionString != null) throw invalidOption('give connectionString or pool, not both');
    this.#connectRetry = connectRetryPolicy(options.connectRetry);
    // Each call waiting between two connect attempts listens on it: many at once during an outage are expected.
    setMaxListeners(0, this.#closing.signal);
    if (options.pool != null) {
      const pool = options.pool as Partial<pg.Pool> | null;
      if (typeof pool?.connect !== 'function' || typeof pool.query !== 'function') throw invalidOption('pool must be a pg.Pool');
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else if (options.connectionString != null) {
      const url: unknown = options.connectionString;
      if (typeof url !== 'string' || url === '') throw invalidOption('connectionString must be a non-empty string');
      const problem = connectionUrlProblem(url);
      if (problem) throw invalidOption(`connectionString ${redactConnectionString(url)}: ${problem}`);
      // A server that accepts and never answers must not hold a call (or close()) for ever.
      this.#pool = createPool({ connectionString: url, max: 4, application_name: 'prefork client', connectionTimeoutMillis: connectTimeoutMs });
      this.#ownsPool = true;
      retryingConnects(this.#pool, (open) => this.#opening(open));
    } else {
      throw invalidOption('new Client() needs a connectionString or a pool');
    }
  }

  /** Queues a task; returns its id (with `key`, the id of a queued or running task with that key, if any). */
  async send<K extends keyof Tasks & string>(task: K, payload?: PayloadOf<Tasks[K]>, options: SendOptions | null = {}): Promise<string> {
    const { db, addOptions } = sendOptions(options);
    return this.#call(
      async () => {
        // With the application's executor too: its transaction may be the first word this schema ever gets.
        await this.#migrated();
        const added = await addTask(db ? toQueryable(db) : this.#pool, this.schema, task, payload, addOptions);
        return added.id;
      },
      { ownConnection: !db },
    );
  }

  /**
   * Queues a task and waits for its final state: `send()` then `result()`, in one step. When a supervisor of
   * this schema runs on this machine, the task goes to it over its Unix socket: inserted already claimed (one
   * commit), run at once and its outcome sent back as soon as it is recorded, without LISTEN/NOTIFY in between.
   * Everything else (no such supervisor, a task queued behind others or retried) goes through the database.
   */
  async run<K extends keyof Tasks & string>(task: K, payload?: PayloadOf<Tasks[K]>, options: RunOptions | null = {}): Promise<TypedTaskView<ResultOf<Tasks[K]>>> {
    assertOptionKeys(options, ['timeoutMs', 'signal', ...addOptionKeys]);
    const { timeoutMs, signal, ...addOptions } = options ?? {};
    assertTimeout(timeoutMs);
    assertSignal(signal);
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    const left = () => timeLeft(deadline);
    checkNewTask(task, payload, addOptions); // bad input is refused here, whichever way the task then goes
    // Aborted already: nothing is sent.
    if (signal?.aborted) throw new PreforkError('ABORTED', 'the signal aborted before the task was sent', { cause: signal.reason });
    return this.#call(async (stop) => {
      // Connecting counts against timeoutMs and the signal too (a server that accepts and never answers).
      await this.#within(this.#migrated(), deadline, stop, `the database did not answer within ${timeoutMs} ms`);
      const channel = addOptions.runAt || addOptions.delayMs ? null : await this.#directChannel(task);
      if (!channel) {
        const { id } = await this.#insertWhileWanted(stop, deadline, timeoutMs, (db) => addTask(db, this.schema, task, payload, addOptions));
        await this.#whenReachable(() => this.#keyHeldByName(id, task, addOptions.key), deadline, stop, `the database did not answer within ${timeoutMs} ms`);
        return this.#result<K>(id, stop, deadline, timeoutMs);
      }
      const submission = randomUUID();
      const { queue, priority, maxAttempts, key } = addOptions;
      const direct = await runDirect(
        channel,
        { submission, name: task, payload: payloadOrEmpty(payload), queue, priority, maxAttempts, key },
        { timeoutMs: left(), signal: stop, read: (id) => getTaskSummary(this.#pool, this.schema, id) },
      );
      throwIfClosed(stop);
      if (direct.view) return direct.view as TypedTaskView<ResultOf<Tasks[K]>>;
      // Through the database: the submission id finds the task a lost answer was about, or inserts it.
      const id =
        direct.id ??
        (await this.#insertWhileWanted(stop, deadline, timeoutMs, (db) => addSubmitted(db, this.schema, submission, task, payloadOrEmpty(payload), addOptions))).id;
      await this.#whenReachable(() => this.#keyHeldByName(id, task, addOptions.key), deadline, stop, `the database did not answer within ${timeoutMs} ms`);
      return this.#result<K>(id, stop, deadline, timeoutMs);
    }, { signal });
  }

  /**
   * run()'s insert through the database, within its deadline and signal, on a connection taken first: sent only if
   * the call still waits for it. A connect retried past the deadline or abort (which run() has rejected by then)
   * sends nothing, so a caller that runs the task again does not get two.
   */
  #insertWhileWanted<T>(stop: AbortSignal, deadline: number | undefined, timeoutMs: number | undefined, insert: (db: pg.PoolClient) => Promise<T>): Promise<T> {
    const unconfirmed = `the task was not confirmed within ${timeoutMs} ms`;
    const inserted = (async () => {
      const client = await this.#pool.connect();
      try {
        if (stop.aborted) throw stop.reason as Error;
        if (deadline !== undefined && Date.now() >= deadline) throw new PreforkError('TIMEOUT', unconfirmed);
        return await insert(client);
      } finally {
        client.release();
      }
    })();
    return this.#within(inserted, deadline, stop, unconfirmed);
  }

  /**
   * A keyed run() whose key a queued or running task holds gets that task: its outcome is what run() returns,
   * which is only right for a task of the same name. One of another name (two uses of one key) is refused with
   * `KEY_IN_USE` rather than waited for and returned as this task's outcome.
   */
  async #keyHeldByName(id: string, task: string, key: string | undefined): Promise<void> {
    if (key === undefined || key === null) return;
    const row = await getTaskNameAndState(this.#pool, this.schema, id);
    if (row && row.name !== task) {
      throw new PreforkError('KEY_IN_USE', `the key "${key}" is held by task ${id}, a ${row.state} ${row.name} task: run() of ${task} would return that task's outcome`);
    }
  }

  /** Queues many tasks in one statement; returns their ids in order. */
  async sendMany(tasks: readonly NewTask[], options: { db?: Executor } | null = {}): Promise<string[]> {
    assertOptionKeys(options, ['db']);
    const db = options?.db;
    assertExecutor(db);
    return this.#call(
      async () => {
        await this.#migrated();
        return addTasks(db ? toQueryable(db) : this.#pool, this.schema, tasks);
      },
      { ownConnection: !db },
    );
  }

  async get<K extends keyof Tasks & string>(id: string, _task?: K): Promise<TypedTaskView<ResultOf<Tasks[K]>> | null> {
    assertTaskId(id);
    return this.#call(async () => {
      await this.#migrated();
      const row = await getTaskSummary(this.#pool, this.schema, id);
      return row ? (toTaskView(row) as TypedTaskView<ResultOf<Tasks[K]>>) : null;
    });
  }

  /**
   * Waits until the task reaches a final state (succeeded, failed, timed_out, cancelled) and returns it.
   * Woken by LISTEN/NOTIFY; rejects with code TIMEOUT after `timeoutMs`, or when `signal` aborts.
   */
  async result<K extends keyof Tasks & string>(id: string, options: { timeoutMs?: number; signal?: AbortSignal } | null = {}): Promise<TypedTaskView<ResultOf<Tasks[K]>>> {
    assertTaskId(id);
    assertOptionKeys(options, ['timeoutMs', 'signal']);
    const { timeoutMs, signal } = options ?? {};
    assertTimeout(timeoutMs);
    assertSignal(signal);
    if (signal?.aborted) throw new PreforkError('ABORTED', `stopped waiting for task ${id}: the signal aborted`, { cause: signal.reason });
    return this.#call((stop) => this.#result<K>(id, stop, timeoutMs === undefined ? undefined : Date.now() + timeoutMs, timeoutMs), { signal });
  }

  /** Waits for task `id` until `deadline` or `stop` (the call's signal: the caller's, and close()). */
  async #result<K extends keyof Tasks & string>(id: string, stop: AbortSignal, deadline: number | undefined, timeoutMs: number | undefined): Promise<TypedTaskView<ResultOf<Tasks[K]>>> {
    await this.#whenReachable(() => this.#migrated(), deadline, stop, `the database did not answer within ${timeoutMs} ms`);
    // The task may be running: a deadline that passes before the wait could read it (run()'s direct path used the
    // time, the listening connection is slow to open) does not blame the database.
    const notFinal = `task ${id} did not reach a final state within ${timeoutMs} ms`;
    let waited: { row: TaskSummaryRow | null; final: boolean } | undefined;
    while (!waited) {
      const listening = await this.#whenReachable(() => this.#listening(), deadline, stop, notFinal);
      // The listening connection went (a server restart, a failover, idle_session_timeout): wait on a new one.
      waited = await listening.waiter.wait(id, { timeoutMs: timeLeft(deadline), signal: stop }).catch((error: unknown) => {
        const lost = (error instanceof PreforkError && error.code === 'LISTEN_LOST') || classifyDatabaseError(error).category === 'connection';
        if (!lost || stop.aborted) throw error;
        listening.lose(error as Error);
        return undefined;
      });
    }
    const { row, final } = waited;
    throwIfClosed(stop);
    if (!row) throw new PreforkError('NOT_FOUND', `no task with id ${id}`);
    if (!final) {
      if (stop.aborted) throw new PreforkError('ABORTED', `stopped waiting for task ${id}: the signal aborted`, { cause: (stop.reason as Error).cause });
      throw new PreforkError('TIMEOUT', `task ${id} is still ${row.state} after ${timeoutMs} ms`);
    }
    return toTaskView(row) as TypedTaskView<ResultOf<Tasks[K]>>;
  }

  /**
   * `step` (a connection of the client's own, a read) within the deadline; while it fails because the database
   * cannot be reached for now, past one connect's retries (a restart, a failover), it is tried again every second
   * until the deadline or `stop`, as a wait goes on after its listening connection was lost.
   */
  async #whenReachable<T>(step: () => Promise<T>, deadline: number | undefined, stop: AbortSignal, timedOut: string): Promise<T> {
    for (;;) {
      try {
        return await this.#within(step(), deadline, stop, timedOut);
      } catch (error) {
        if (stop.aborted || !unreachableForNow(error)) throw error;
        // Not ref'd: a wait that timed out meanwhile does not keep the application's process alive for it.
        await this.#within(delay(unreachableRetryMs, undefined, { signal: stop, ref: false }).catch(() => {}), deadline, stop, timedOut);
      }
    }
  }

  /** Cancels a task: a queued one never runs; a running one has its signal aborted and its query cancelled (then its hard limit applies). */
  async cancel(id: string): Promise<CancelOutcome> {
    assertTaskId(id);
    return this.#call(async () => {
      await this.#migrated();
      return cancelTask(this.#pool, this.schema, id);
    });
  }

  /**
   * Queues a task that failed, timed out or was cancelled again, due now, with `attempts` more attempts (default 1).
   * 'retried' | 'not_found' | 'succeeded' (not retried) | 'not_finished' (queued or running) | 'key_in_use' (a
   * queued or running task holds its key).
   */
  async retry(id: string, options: { attempts?: number } | null = {}): Promise<RetryOutcome> {
    assertTaskId(id);
    assertOptionKeys(options, ['attempts']);
    const attempts = options?.attempts ?? 1;
    assertRetryAttempts(attempts);
    return this.#call(async () => {
      await this.#migrated();
      const [outcome] = await retryTasks(this.#pool, this.schema, [id], attempts);
      return outcome?.outcome ?? 'not_found';
    });
  }

  /**
   * Pauses a task name on every supervisor: its tasks wait queued (running ones finish) until resume().
   * 'paused' | 'already_paused'.
   */
  async pause(name: string, options: { reason?: string } | null = {}): Promise<PauseOutcome> {
    assertTaskName(name);
    assertNoNul(name, 'the task name');
    assertOptionKeys(options, ['reason']);
    const reason = options?.reason;
    assertPauseReason(reason);
    return this.#call(async () => {
      await this.#migrated();
      const [result] = await pauseTasks(this.#pool, this.schema, [name], reason ?? null);
      return result!.outcome;
    });
  }

  /** Lets every supervisor start tasks of a paused name again. 'resumed' | 'not_paused'. */
  async resume(name: string): Promise<ResumeOutcome> {
    assertTaskName(name);
    assertNoNul(name, 'the task name');
    return this.#call(async () => {
      await this.#migrated();
      const [result] = await resumeTasks(this.#pool, this.schema, [name]);
      return result!.outcome;
    });
  }

  /** The newest tasks first, by state, task name and queue; `before` (an id) pages on. At most `limit` (default 50). */
  async list(filter: TaskListFilter | null = {}): Promise<{ tasks: TaskView[]; more: boolean }> {
    assertListFilter(filter);
    return this.#call(async () => {
      await this.#migrated();
      const { rows, more } = await listTasks(this.#pool, this.schema, filter ?? {});
      return { tasks: rows.map(toTaskView), more };
    });
  }

  /**
   * Ends every wait in progress (they reject with CLIENT_CLOSED), lets the calls in progress end, then gives
   * back its connections (and ends its pool, not one passed as `pool`). Calls after it reject with CLIENT_CLOSED.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(closedError());
    for (const stop of this.#stops) stop.abort(closedError());
    await Promise.allSettled([...this.#inFlight]);
    (await this.#direct?.channel.catch(() => null))?.close();
    const listening = await this.#waiter?.catch(() => undefined);
    if (listening) {
      await listening.waiter.close();
      await listening.end();
    }
    if (this.#ownsPool) await endPool(this.#pool);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Runs one public call: refused once closed, tracked so that close() waits for it, and given one signal that
   * aborts when the caller's does (ABORTED) or the client closes (CLIENT_CLOSED). Its listeners go when it ends:
   * a long-lived client must not gather one per call on its own signal or the caller's. `ownConnection` (the
   * default): it runs on the client's pool, whose connection errors are DATABASE_UNREACHABLE.
   */
  #call<T>(fn: (stop: AbortSignal) => Promise<T>, { signal: callerSignal, ownConnection = true }: { signal?: AbortSignal | undefined; ownConnection?: boolean } = {}): Promise<T> {
    if (this.#closed) throw closedError();
    const stop = new AbortController();
    const onAbort = () => stop.abort(new PreforkError('ABORTED', 'the signal aborted', { cause: callerSignal?.reason }));
    this.#stops.add(stop);
    callerSignal?.addEventListener('abort', onAbort, { once: true });
    // On the application's connection (`db`), its errors are the application's: a lost connection stays pg's,
    // which its own retry (withTransaction, say) recognises.
    const promise: Promise<T> = fn(stop.signal).catch((error: unknown) => {
      throw ownConnection ? this.#databaseError(error) : error;
    }).finally(() => {
      this.#stops.delete(stop);
      callerSignal?.removeEventListener('abort', onAbort);
      this.#inFlight.delete(promise);
    });
    this.#inFlight.add(promise);
    return promise;
  }

  /**
   * pg's errors of a connection that failed or a server that turns sessions away, as DATABASE_UNREACHABLE (pg's
   * error its cause): one code for "the database is not there" whichever call met it. Others go as they are.
   */
  #databaseError(error: unknown): unknown {
    if (error instanceof PreforkError) return error;
    const verdict = classifyDatabaseError(error);
    if (verdict.category !== 'connection' && verdict.category !== 'unavailable') return error;
    return databaseUnreachable(error, `cannot reach the database (${verdict.reason})`, this.#connectionString());
  }

  /**
   * Opens a connection of the client's own, again while it fails transiently (within the connectRetry policy); then
   * fails with the last error, which says how many attempts were made. A permanent failure is not retried.
   */
  #opening<T>(open: () => Promise<T>): Promise<T> {
    if (!this.#connectRetry) return open();
    return retryTransient(() => open(), {
      ...this.#connectRetry,
      connectionString: this.#connectionString() ?? '',
      signal: this.#closing.signal,
      describe: errorText,
      fail: (failure) => (failure.transient ? gaveUp(failure) : (failure.error as Error)),
      aborted: () => closedError(),
    });
  }

  /** The connection string of the client's pool, if it has one: what to keep out of messages. */
  #connectionString(): string | undefined {
    return (this.#pool as pg.Pool & { options?: pg.ClientConfig }).options?.connectionString;
  }

  /** Where the client's pool connects, without the password. */
  #target(): string {
    const url = this.#connectionString();
    if (url) return redactConnectionString(url);
    const o = (this.#pool as pg.Pool & { options?: pg.ClientConfig }).options ?? {};
    return `${o.host ?? process.env.PGHOST ?? 'localhost'}:${o.port ?? process.env.PGPORT ?? 5432}/${o.database ?? process.env.PGDATABASE ?? ''}`;
  }

  /**
   * `step` unless the deadline passes (TIMEOUT) or `stop` aborts (its reason) first; the step itself goes on in
   * the background (its connect is bounded on its own).
   */
  #within<T>(step: Promise<T>, deadline: number | undefined, stop: AbortSignal, timedOut: string): Promise<T> {
    if (stop.aborted) return Promise.reject(stop.reason as Error);
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => settle(() => reject(stop.reason as Error));
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        stop.removeEventListener('abort', onAbort);
        fn();
      };
      stop.addEventListener('abort', onAbort, { once: true });
      if (deadline !== undefined) timer = setTimeout(() => settle(() => reject(new PreforkError('TIMEOUT', timedOut))), timeLeft(deadline));
      step.then(
        (value) => settle(() => resolve(value)),
        (error: unknown) => settle(() => reject(error)),
      );
    });
  }

  /**
   * Creates or migrates the schema, once, on a connection of its own: a `send({ db })` calls it while the
   * application's transaction holds a connection of its pool, maybe the only one.
   */
  #migrated(): Promise<void> {
    this.#ready ??= (async () => {
      const { client, end } = await this.#opening(() => ownConnection(this.#pool, 'migrate'));
      try {
        await migrate(client, this.schema);
      } finally {
        await end().catch(() => {});
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      // The first word with the database: a refused connect, a wrong password, a database that is not there, no
      // right to create the schema. What has no code from pg or the system (a bug) goes as it is.
      if (error instanceof PreforkError) throw error;
      const category = classifyDatabaseError(error).category;
      if (category !== 'connection' && category !== 'unavailable' && typeof (error as { code?: unknown })?.code !== 'string' && !sslRefused(error)) throw error;
      throw databaseUnreachable(error, `cannot use the database at ${this.#target()}`, this.#connectionString());
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

  /**
   * The connection that LISTENs for finished tasks: one of its own, opened as the pool opens its connections but
   * outside it. It is held as long as the client lives, and an application's pool (`max: 1`, say) must not lose a
   * connection to it. When the server or the network ends it, it is forgotten (the next wait opens another) and the
   * waits on it go on, on a new one; unwatched, its 'error' would have crashed the application.
   */
  #listening(): Promise<Listening> {
    const current: Promise<Listening> = (this.#waiter ??= (async () => {
      const { client, end } = await this.#opening(() => ownConnection(this.#pool, 'listen'));
      let waiter: TaskWaiter | undefined;
      const lost = (error: Error) => {
        if (this.#waiter === current) this.#waiter = undefined;
        waiter?.lost(new PreforkError('LISTEN_LOST', `the connection waiting for tasks was lost: ${error.message}`, { cause: error }));
        void end().catch(() => {});
      };
      client.on('error', lost);
      client.on('end', () => lost(new Error('it closed')));
      try {
        waiter = await TaskWaiter.listen(client, this.schema);
      } catch (error) {
        await end().catch(() => {});
        throw error;
      }
      return { waiter, end, lose: lost };
    })().catch((error: unknown) => {
      if (this.#waiter === current) this.#waiter = undefined;
      throw error;
    }));
    return current;
  }
}

interface Listening {
  waiter: TaskWaiter;
  /** Closes the connection (or gives back the pool's, for a pool that is not a pg.Pool). */
  end: () => Promise<void>;
  /** Forgets it, gone with `error` (also when a query on it failed before its 'error' came): the next wait opens another. */
  lose: (error: Error) => void;
}

/**
 * A connection outside the pool (for LISTEN, for migrations): a new client of the pool's own class and settings
 * (pg.Pool keeps both), so it reaches the server as the pool's connections do. A pool that does not expose them
 * lends one of its connections.
 */
async function ownConnection(pool: pg.Pool, purpose: 'listen' | 'migrate'): Promise<{ client: pg.Client; end: () => Promise<void> }> {
  const { Client, options } = pool as pg.Pool & { Client?: new (config: pg.ClientConfig) => pg.Client; options?: pg.ClientConfig };
  if (typeof Client === 'function' && typeof options === 'object' && options !== null) {
    // Named apart in pg_stat_activity: the listener is the one session a client keeps open while it waits.
    const client = new Client({ ...options, application_name: `${options.application_name ?? 'prefork client'} (${purpose})`.slice(0, 63) });
    client.on('error', () => {}); // an error while connecting rejects connect(), and must not crash the application
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return { client, end: () => client.end() };
  }
  const lent = await pool.connect();
  lent.on('error', () => {});
  return { client: lent as unknown as pg.Client, end: async () => lent.release(true) };
}

/**
 * The pool's connect (which its query() uses too) goes through `opening`: a connection that failed to open is
 * opened again; one that opened and failed later is not touched.
 */
function retryingConnects(pool: pg.Pool, opening: (open: () => Promise<pg.PoolClient>) => Promise<pg.PoolClient>): void {
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  type Callback = (error: Error | undefined, client?: pg.PoolClient, done?: pg.PoolClient['release']) => void;
  (pool as unknown as { connect: (callback?: Callback) => Promise<pg.PoolClient> | undefined }).connect = (callback) => {
    const opened = opening(connect);
    if (typeof callback !== 'function') return opened;
    opened.then(
      (client) => callback(undefined, client, client.release),
      (error: Error) => callback(error, undefined, () => {}),
    );
    return undefined;
  };
}

/** The last transient failure, saying how many attempts it ended: the redacted copy a worker's connect makes, pg's error its cause. */
function gaveUp({ error, message, why }: RetryFailure): Error {
  return Object.defineProperty(sanitized(error, `${message} (${why})`), 'cause', { value: error, writable: true, configurable: true });
}

function connectRetryPolicy(option: unknown): ConnectRetryPolicy | undefined {
  if (option === false) return undefined;
  if (option === undefined || option === null) return clientConnectRetry;
  if (typeof option !== 'object') throw invalidOption('connectRetry must be false or { retries, maxElapsedMs }');
  assertOptionKeys(option, ['retries', 'maxElapsedMs'], 'connectRetry: ');
  const policy = { ...clientConnectRetry };
  for (const key of ['retries', 'maxElapsedMs'] as const) {
    const value = (option as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalidOption(`connectRetry.${key} must be a whole number of 0 or more`);
    policy[key] = value;
  }
  return policy;
}

function invalidOption(message: string): PreforkError {
  return new PreforkError('INVALID_OPTION', message, { exitCode: 2 });
}

function closedError(): PreforkError {
  return new PreforkError('CLIENT_CLOSED', 'the client is closed');
}

function timeLeft(deadline: number | undefined): number | undefined {
  return deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
}

/** pg's error for `sslmode=require` (or `ssl: true`) against a server without SSL: it has no code, and is the setup's. */
function sslRefused(error: unknown): boolean {
  return error instanceof Error && error.message === 'The server does not support SSL connections';
}

/** A failure to reach the database that may pass (refused, reset, the server starting): not a wrong password, say. */
function unreachableForNow(error: unknown): boolean {
  const verdict = classifyDatabaseError(error); // DATABASE_UNREACHABLE is classified as its cause
  return verdict.transient && (verdict.category === 'connection' || verdict.category === 'unavailable');
}

/** After a wait that `stop` ended: the client closed meanwhile, then say so (the caller's abort is the caller's). */
function throwIfClosed(stop: AbortSignal): void {
  if (stop.aborted && (stop.reason as PreforkError | undefined)?.code === 'CLIENT_CLOSED') throw stop.reason as PreforkError;
}
