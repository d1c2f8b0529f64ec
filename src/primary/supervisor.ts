/**
 * The supervisor: the primary process's wiring. It owns the queue connections, forks the workers, claims
 * tasks for them, records their outcomes, redelivers a crashed worker's tasks, and stops gracefully.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import type { Logger } from 'pino';
import { taskApplicationName, taskApplicationNameIsWhole } from '../db/application-name.js';
import { redactConnectionString } from '../db/connection-string.js';
import { retryTransient } from '../db/connect-with-retry.js';
import { channelsFor } from '../db/identifiers.js';
import { preferLocalSocket } from '../db/local-socket.js';
import { createPool, endPool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { PreforkError, publicError, type SerializedError } from '../errors.js';
import { dispatchMessage, type MessageHandlers, type TaskInfo, type WorkerMessage } from '../protocol.js';
import { rememberTaskNames } from '../queue/known-tasks.js';
import type { Settlement } from '../queue/settle-tasks.js';
import { deleteFinished } from '../queue/delete-finished.js';
import { recoverOrphans } from '../queue/recover-orphans.js';
import { releaseTasks } from '../queue/release-tasks.js';
import { notifyWake } from '../queue/notify.js';
import { pausedTasks } from '../queue/paused-tasks.js';
import type { TaskLimits } from '../queue/claim-tasks.js';
import { signalBackends, type BackendRef } from '../queue/terminate-backends.js';
import { heartbeat, registerSupervisor, pruneSupervisors, type SupervisorState } from '../queue/supervisors.js';
import { budgetLimit, ConnectionBudget } from './connection-budget.js';
import { Dispatcher } from './dispatcher.js';
import { Fleet, type ReplaceKind } from './fleet.js';
import { parseControl, type ControlCommand, type ControlHandlers } from './control.js';
import { Outcomes, type TaskFinished } from './outcomes.js';
import { ProgressWriter } from './progress.js';
import { Listener } from './listener.js';
import { deadSupervisorsOnHost, orphanWorkerPids } from './same-host.js';
import { pidScope } from '../process-alive.js';
import { Settler } from './settler.js';
import { DirectSubmissions } from './direct-submissions.js';
import { Scheduler, type ScheduledTask, type ScheduleTick } from './scheduler.js';
import { releaseLost } from '../queue/release-lost.js';
import { TimeLimits, type TimeLimitActions } from './time-limits.js';
import type { SupervisorOptions } from './supervisor-options.js';
import { until } from './wait.js';
import { maxPipeline, type InFlightTask, type WorkerHandle } from './worker-handle.js';
import { WorkerPool } from './worker-pool.js';

/** The longest a task's success waits to be recorded with others' (see settler.ts). */
const settleLingerMs = 10;
/** The largest buffer the automatic prefetch grows to: claims of up to this many tasks in one statement. */
const maxAutoPrefetch = 1_000;
/**
 * A task running under this supervisor and unknown to it is taken for lost once claimed this long ago (or a
 * lease ago, if that is shorter): far beyond the moment between a claim's commit and its tasks reaching memory,
 * and no claim is in flight when it is looked for.
 */
const lostClaimAgeMs = 10_000;
/**
 * Tasks starting make the snapshot be published at most this often (besides the heartbeat): a supervisor that
 * dies leaves recovery a list of its started tasks at most this old (a task started later goes back uncounted).
 */
const startPublishIntervalMs = 200;

export interface SupervisorEvents {
  /** A stop (graceful or forced) finished. */
  stopped: [];
  /** An attempt ended (for metrics). */
  taskFinished: [TaskFinished];
  /** A worker process exited; `crashed` when it was not asked to. */
  workerExited: [{ workerId: number; pid: number; crashed: boolean }];
  /** A tick of a task's schedule was handled here (for metrics). */
  scheduleTick: [ScheduleTick];
  /** A worker could not start (its task module or a start-up hook failed; for metrics). */
  workerStartupFailed: [{ workerId: number }];
  /** A reload ended (for metrics). */
  reloadEnded: [{ outcome: 'succeeded' | 'failed' }];
}

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export class Supervisor extends EventEmitter<SupervisorEvents> implements AsyncDisposable {
  readonly id = randomUUID();
  readonly host = hostname();
  readonly startedAt = new Date();
  readonly #options: SupervisorOptions;
  readonly #log: Logger;
  readonly #db: pg.Pool;
  readonly #channels;
  readonly #pool: WorkerPool;
  readonly #dispatcher: Dispatcher;
  readonly #settler: Settler;
  readonly #listener: Listener;
  readonly #timeLimits: TimeLimits;
  readonly #outcomes: Outcomes;
  #phase: Phase = 'new';
  /** The options of each task name, as the newest worker ready reported them (kept for a name a reload removed). */
  #taskInfo = new Map<string, TaskInfo>();
  /** The names of the newest ready worker's task module: what this supervisor says it runs. */
  #offered: string[] = [];
  /** The id of that worker (ids grow with each fork). */
  #offeredBy = 0;
  /** The task names with limits across supervisors (maxRunning, rateLimit): claimed apart, never directly. */
  readonly #limits = new Map<string, TaskLimits>();
  /** Task names no supervisor claims (prefork pause), as last read from the database. */
  #paused: ReadonlySet<string> = new Set();
  #everReady = false;
  readonly #fleet: Fleet;
  #reloading: Promise<void> | undefined;
  /** A reload asked for while one ran: it starts when that one ends. */
  #reloadAgain: Promise<void> | undefined;
  /** The last reload that ended here, numbered: `prefork reload` tells the one it asked for by the number. */
  #lastReload: LastReload | null = null;
  #timers: NodeJS.Timeout[] = [];
  #snapshotTimer: NodeJS.Timeout | undefined;
  #publishedAt = -Infinity;
  /** When a lease renewal last succeeded, and whether the last one failed (the database's reachability). */
  #databaseOkAt = -Infinity;
  #databaseFailing = false;
  /** Aborted when a stop is asked for: ends the start's wait for its database. */
  readonly #startAbort = new AbortController();
  /** A reload asked for while starting, run once the start is done. */
  #reloadAfterStart: Promise<void> | undefined;
  /** Renews the lease while the start waits for its workers. */
  #startBeat: NodeJS.Timeout | undefined;
  #tearingDown = false;
  #startPromise: Promise<void> | undefined;
  #stopPromise: Promise<void> | undefined;
  #startupError: ((error: PreforkError) => void) | undefined;
  /** What task connections use: the URL given, or the same server's Unix socket. */
  #taskDatabaseUrl: string;
  /** Workers that asked whether the budget is enforced before the primary knew. */
  readonly #budgetQueries = new Set<WorkerHandle>();
  #budget: ConnectionBudget | undefined;
  /** The most task connections reported open at once while the budget is not enforced. */
  #openPeak = 0;
  /** Tasks whose signal was aborted because the supervisor is stopping: released, not failed. */
  readonly #abortedForStop = new Set<string>();
  readonly #background = new Set<Promise<unknown>>();
  readonly #direct: DirectSubmissions;
  readonly #scheduler: Scheduler;
  readonly #progress: ProgressWriter;

  constructor(options: SupervisorOptions, log: Logger) {
    super();
    this.#options = options;
    this.#taskDatabaseUrl = options.databaseUrl;
    this.#log = log.child({ supervisorId: this.id });
    this.#channels = channelsFor(options.schema);
    this.#db = createPool(
      {
        connectionString: options.databaseUrl,
        max: 4,
        // Named with its schema: several queues on one database tell their sessions apart in pg_stat_activity.
        application_name: `prefork supervisor:${options.schema}`.slice(0, 63),
        connectionTimeoutMillis: options.session.connectTimeoutMs || undefined,
      },
      (error) => this.#log.warn({ event: 'queue_connection_error', err: error }, 'queue connection failed'),
    );
    this.#listener = new Listener(options.databaseUrl, [this.#channels.wake, this.#channels.control], this.#log, `prefork listener:${options.schema}`.slice(0, 63));
    this.#settler = new Settler(this.#db, options.schema, this.id, this.#log, (settled, finishedAt, fenced) => this.#onSettled(settled, finishedAt, fenced), {
      maxLingerMs: settleLingerMs,
      outstanding: () => this.#pool.inFlight,
    });
    this.#pool = new WorkerPool({
      concurrency: options.concurrency,
      maxTasksPerWorker: options.maxTasksPerWorker,
      // A fixed prefetch also bounds what waits on a worker: `--prefetch 0` hands out one task per free slot.
      maxQueue: Math.min(maxPipeline, options.prefetch ?? maxPipeline),
      onTaskStart: (handle, f) => {
        this.#timeLimits.watch(handle, f, this.#taskInfo.get(f.task.name));
        // The published snapshot tells recovery which tasks a dead supervisor had started (their attempt is
        // lost, counted) and which it only held (given back uncounted): kept within a fraction of a second.
        this.#publishSoon(startPublishIntervalMs);
      },
      log: this.#log,
      workerConfig: () => ({
        tasksUrl: options.tasksPath ? pathToFileURL(options.tasksPath).href : null,
        databaseUrl: this.#taskDatabaseUrl,
        schema: options.schema,
        concurrency: options.concurrency,
        logLevel: options.logLevel,
        logFormat: options.logFormat,
        startupTimeoutMs: options.startupTimeoutMs,
        // The worker drops it on a server older than 14, which rejects the setting.
        session: { ...options.session, clientConnectionCheckIntervalMs: 1_000 },
        heartbeatMs: options.heartbeatMs,
        // Unknown while the first workers start beside the database preparation: they ask (`budget_query`).
        budgetEnforced: this.#budget ? this.#budgetEnforced() : null,
        supervisorId: this.id,
      }),
    });
    this.#dispatcher = new Dispatcher({
      db: this.#db,
      schema: options.schema,
      supervisorId: this.id,
      log: this.#log,
      workers: () => this.#pool.handles,
      maxAttemptsByName: () => this.#maxAttemptsByName(),
      giveBack: (ids, reason) => this.#track(this.#release(ids, reason)),
      limits: () => this.#limits,
      paused: () => this.#paused,
      defaultMaxAttempts: options.defaultMaxAttempts,
      pollIntervalMs: options.pollIntervalMs,
      ...prefetchRange(options),
      queues: options.queues?.length ? options.queues : null,
    });
    this.#timeLimits = new TimeLimits(options, this.#timeLimitActions(), this.#log);
    this.#fleet = new Fleet(this.#pool, options.workers, this.#log);
    this.#outcomes = new Outcomes(this.#settler, this.#taskInfo, options.hardTimeoutMs, this.#log, (id) => this.#direct.waitsOnSocket(id));
    this.#progress = new ProgressWriter(this.#db, options.schema, this.id, this.#log);
    this.#scheduler = new Scheduler({
      db: this.#db,
      schema: options.schema,
      log: this.#log,
      track: (promise) => this.#track(promise),
      onTick: (tick) => this.emit('scheduleTick', tick),
    });
    this.#direct = new DirectSubmissions({
      db: this.#db,
      schema: options.schema,
      supervisorId: this.id,
      log: this.#log,
      accepting: () => this.#phase === 'running',
      runsHere: (name, queue) =>
        (!options.queues?.length || options.queues.includes(queue)) &&
        !this.#limits.has(name) &&
        !this.#paused.has(name) &&
        this.#dispatcher.buffered === 0 &&
        this.#pool.handles.some((h) => h.state === 'ready' && h.freeSlots > 0 && h.offers(name)),
      nothingDue: () => this.#dispatcher.nothingDue,
      maxAttempts: (name) => this.#taskInfo.get(name)?.maxAttempts ?? options.defaultMaxAttempts,
      runNow: (task) => this.#dispatcher.runNow(task),
      release: (ids, reason) => this.#release(ids, reason),
      track: (promise) => this.#track(promise),
    });
    this.#outcomes.on('finished', (finished) => this.emit('taskFinished', finished));
    this.#wire();
  }

  get phase(): Phase {
    return this.#phase;
  }

  /**
   * Whether this supervisor can take work now, for a readiness check: it runs, its last lease renewal reached
   * the database (renewals go every heartbeat; one that failed, or none for 3 heartbeats and at least 5 s, says
   * no), and a worker is ready. During a database outage it is alive but not ready: it recovers by itself.
   */
  readiness(): { ready: boolean; database: boolean; workersReady: number; workersWanted: number } {
    const database =
      !this.#databaseFailing && performance.now() - this.#databaseOkAt <= Math.max(3 * this.#options.heartbeatMs, 5_000);
    const workersReady = this.#pool.handles.filter((h) => h.state === 'ready').length;
    return { ready: this.#phase === 'running' && database && workersReady > 0, database, workersReady, workersWanted: this.#fleet.wanted };
  }

  /** Connects, migrates, registers, forks the workers and waits until every one is ready. Idempotent. */
  start(): Promise<void> {
    this.#startPromise ??= this.#start();
    return this.#startPromise;
  }

  /** Graceful stop: no new claims, running tasks finish (or are aborted after the shutdown timeout). Idempotent. */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#stop(false);
    return this.#stopPromise;
  }

  /** Immediate stop: workers are killed and their tasks go back to the queue uncounted. */
  async forceStop(): Promise<void> {
    this.#log.warn({ event: 'supervisor_force_stop' }, 'forcing stop');
    await this.#abandonInFlight(this.#pool.handles, 'forced stop');
    this.#stopPromise ??= this.#stop(true);
    return this.#stopPromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- start ----------------------------------------------------------------------------------------------

  async #start(): Promise<void> {
    this.#phase = 'starting';
    const o = this.#options;
    this.#log.info(
      { event: 'supervisor_starting', database: redactConnectionString(o.databaseUrl), schema: o.schema, workers: o.workers, concurrency: o.concurrency, tasks: o.tasksPath ?? null },
      'starting',
    );
    try {
      // Workers take longest to start (a Node.js process each, loading the task module): they start first, and
      // the database is prepared meanwhile. Nothing reaches them before they are ready.
      const forked = this.#forkInitialWorkers();
      forked.catch(() => {}); // awaited below
      await this.#prepareDatabase();
      this.#answerBudgetQueries();
      await this.#listener.start();
      await forked;
    } catch (error) {
      await this.#teardown('stopped').catch(() => {});
      this.#phase = 'stopped';
      throw toStartError(error);
    }
    await Promise.all([this.#rememberTasks(), this.#direct.open(), this.#readPaused()]);
    this.#phase = 'running';
    clearInterval(this.#startBeat);
    this.#fleet.startRespawning();
    await this.#publish();
    // Tasks of supervisors that died on this host go back to the queue; the dispatcher is woken if any did.
    this.#track(this.#recover());
    this.#every(o.heartbeatMs, () => this.#publish());
    this.#every(Math.max(1_000, Math.floor(o.leaseMs / 3)), () => this.#recover());
    this.#every(Math.max(1_000, Math.floor(o.leaseMs / 3)), () => this.#releaseLost());
    // The control NOTIFY tells of a pause at once; this catches one sent while the listener was away.
    this.#every(5_000, () => this.#readPaused());
    if (o.keepFinishedMs) this.#every(60_000, () => this.#deleteFinished(o.keepFinishedMs!));
    this.#dispatcher.resume();
    this.#scheduler.start(schedulesOf([...this.#taskInfo.values()]));
    this.#log.info({ event: 'supervisor_ready', workers: this.#pool.size }, 'all workers ready');
  }

  /**
   * The start's first connection. A transient failure (refused, reset, the server starting up: a database
   * started beside the supervisor, by compose or Kubernetes) is retried as task connections are, with capped
   * exponential backoff and full jitter, up to --connect-retries and 15 s in all; a permanent one fails at once.
   */
  async #connectFirst(): Promise<pg.PoolClient> {
    const { connectRetries, connectRetryMaxMs } = this.#options.session;
    return retryTransient(() => this.#db.connect(), {
      connectionString: this.#options.databaseUrl,
      retries: connectRetries,
      maxElapsedMs: connectRetryMaxMs,
      signal: this.#startAbort.signal,
      onRetry: ({ attempt, delayMs, reason, message }) =>
        this.#log.warn({ event: 'database_connect_retry', attempt, delayMs, reason, error: message }, `could not connect to the database (${message}); retrying in ${delayMs} ms`),
      fail: ({ error, message, why, transient }) =>
        // A permanent failure (a wrong password, no such database) is said as it is by the start's error.
        transient ? new PreforkError('DATABASE_UNREACHABLE', `could not use the database: ${message} (${why})`, { cause: error, exitCode: 3 }) : (error as Error),
      aborted: stoppedDuringStart,
    });
  }

  async #prepareDatabase(): Promise<void> {
    const client = await this.#connectFirst();
    // Reachable from here on, for /readyz, until a lease renewal says otherwise.
    this.#databaseOkAt = performance.now();
    try {
      const limit = await budgetLimit(client, { maxDbConnections: this.#options.maxDbConnections, taskSlots: this.#options.workers * this.#options.concurrency }, this.#log);
      this.#budget = new ConnectionBudget(limit, (handle, requestId) => handle.send({ type: 'slot_granted', requestId }));
      const { applied } = await migrate(client, this.#options.schema);
      if (applied.length > 0) this.#log.info({ event: 'migrations_applied', applied }, 'database schema migrated');
      if (this.#options.localSocket !== false) {
        const { url, socketDir } = await preferLocalSocket(this.#options.databaseUrl, client);
        this.#taskDatabaseUrl = url;
        if (socketDir) this.#log.info({ event: 'database_local_socket', socketDir }, `task connections use the server's Unix socket in ${socketDir}`);
      }
    } finally {
      client.release();
    }
    await registerSupervisor(this.#db, this.#options.schema, { id: this.id, host: this.host, pid: process.pid, pidScope: pidScope() });
    // The row says `starting` until the workers are ready (status shows it; send does not warn that nobody serves
    // the schema), and its lease is renewed meanwhile: a large task module may take longer than a lease to load.
    this.#startBeat = this.#every(this.#options.heartbeatMs, () => (this.#tearingDown ? Promise.resolve() : this.#publish('starting')));
    await this.#publish('starting');
    await pruneSupervisors(this.#db, this.#options.schema, 24 * 3_600_000);
  }

  /**
   * Resolves when all initial workers are ready; rejects on the first start-up failure, on a worker that exits
   * before it is ready (nothing respawns workers until the start is done: its main module may not even load),
   * and when a stop is asked for meanwhile.
   */
  async #forkInitialWorkers(): Promise<void> {
    let onReady!: () => void;
    let onExit!: (handle: WorkerHandle, info: { code: number | null; signal: string | null }) => void;
    const ready = new Promise<void>((resolve, reject) => {
      this.#startupError = reject;
      onReady = () => {
        if (this.#pool.handles.filter((h) => h.state === 'ready').length >= this.#options.workers) resolve();
      };
      onExit = (handle, info) => {
        const how = info.signal ? `on ${info.signal}` : `with code ${info.code}`;
        reject(new PreforkError('WORKER_STARTUP_FAILED', `worker ${handle.id} (pid ${handle.pid}) exited ${how} before it was ready`, { exitCode: 1 }));
      };
    });
    this.#pool.on('ready', onReady);
    this.#pool.on('exit', onExit);
    this.#fleet.start();
    try {
      await ready;
    } finally {
      this.#startupError = undefined;
      this.#pool.off('ready', onReady);
      this.#pool.off('exit', onExit);
    }
  }

  // ---- events ---------------------------------------------------------------------------------------------

  #wire(): void {
    this.#pool.on('ready', (handle) => this.#onWorkerReady(handle));
    this.#pool.on('startupFailed', (handle, error) => this.#onStartupFailed(handle, error));
    this.#pool.on('exit', (handle, info) => this.#onWorkerExit(handle, info));
    const handlers = this.#taskMessageHandlers();
    this.#pool.on('message', (handle, message) => dispatchMessage(handlers(handle), message));
    this.#listener.on('notification', (channel, payload) => {
      if (channel === this.#channels.wake) this.#dispatcher.wake();
      else if (channel === this.#channels.control) this.#onControl(payload);
    });
    this.#listener.on('reconnected', () => {
      this.#dispatcher.wake();
      this.#track(this.#readPaused());
    });
  }

  #onWorkerReady(handle: WorkerHandle): void {
    this.#everReady = true;
    this.#fleet.onReady(handle);
    // The newest worker's options win: after a reload, the task module's new options apply, its schedules included.
    // Newest by fork, not by readiness: one forked before a reload may be ready after the new ones, with the old
    // module (the reload replaces it next).
    if (handle.id > this.#offeredBy) {
      this.#offeredBy = handle.id;
      this.#offered = handle.tasks.map((info) => info.name);
      for (const info of handle.tasks) {
        this.#taskInfo.set(info.name, info);
        if (info.maxRunning !== undefined || info.rateLimit !== undefined) this.#limits.set(info.name, { maxRunning: info.maxRunning, rateLimit: info.rateLimit });
        else this.#limits.delete(info.name);
      }
      // A replacement (a reload, a recycle) may offer other options: remembered for what `tasks` and `get` show.
      if (this.#phase === 'running') {
        this.#track(this.#rememberTasks().catch(() => {}));
        this.#scheduler.update(schedulesOf(handle.tasks));
      }
    }
    this.#log.info({ event: 'worker_ready', workerId: handle.id, workerPid: handle.pid }, 'worker ready');
    this.#publishSoon();
    this.#dispatcher.wake();
  }

  #onStartupFailed(handle: WorkerHandle, error: SerializedError): void {
    // The worker logged the error with its stack; the primary's line says it without repeating the stack.
    this.#log.error({ event: 'worker_startup_failed', workerId: handle.id, workerPid: handle.pid, code: error.code }, `worker could not start: ${error.message}`);
    this.#fleet.onStartupFailed(handle, error.message);
    this.emit('workerStartupFailed', { workerId: handle.id });
    if (!this.#everReady && this.#startupError) {
      this.#startupError(new PreforkError(error.code ?? 'WORKER_STARTUP_FAILED', `a worker could not start: ${error.message}`, { exitCode: 1 }));
    }
    // The worker exits by itself; make sure it does.
    setTimeout(() => this.#pool.kill(handle), 2_000).unref();
  }

  #onWorkerExit(handle: WorkerHandle, info: { code: number | null; signal: string | null; planned: boolean }): void {
    // Killed for a task's hard limit it did not crash: the kill was the supervisor's own step, whether or not the
    // replacement was ready by then (when it was, the pool had already marked the old worker stopping).
    const crashed = !info.planned && !handle.killedForTimeLimit;
    const inFlight = handle.takeAll();
    this.#budget?.releaseAll(handle);
    this.#log[crashed ? 'warn' : 'info'](
      { event: crashed ? 'worker_crashed' : 'worker_exited', workerId: handle.id, workerPid: handle.pid, code: info.code, signal: info.signal, inFlight: inFlight.length },
      crashed ? 'worker exited unexpectedly' : 'worker exited',
    );
    if (crashed || handle.killedForTimeLimit) this.#track(this.#terminateBackends(handle, inFlight));
    // Tasks it had not started yet go to another worker as they are: this attempt never began. Killed for a task's
    // hard limit, the tasks running beside that one go back the same way, uncounted: the kill was not theirs.
    const innocent = handle.killedForTimeLimit ? inFlight.filter((f) => f.started && !f.timedOut) : [];
    for (const f of inFlight) if (f.started && !innocent.includes(f)) this.#outcomes.crashed(f, handle, info);
    if (innocent.length > 0) {
      this.#log.warn(
        { event: 'tasks_requeued_uncounted', workerId: handle.id, workerPid: handle.pid, taskIds: innocent.map((f) => f.task.id) },
        'tasks running beside the one that passed its hard limit were stopped with its worker; they run again, the attempt not counted',
      );
    }
    this.#returnUnstarted([...innocent, ...inFlight.filter((f) => !f.started)]);
    this.emit('workerExited', { workerId: handle.id, pid: handle.pid, crashed });
    this.#publishSoon();
    // An old worker whose replacement could not start is back at work: it has free slots.
    if (this.#fleet.onExit(handle, info)) this.#dispatcher.wake();
  }

  #timeLimitActions(): TimeLimitActions {
    return {
      abort: (handle, f, reason, code) => {
        // Past the hard limit the attempt is over: a wait for a connection or a connect ends too.
        handle.send(code === 'HARD_TIMEOUT' ? { type: 'abort', taskId: f.task.id, reason, code, final: true } : { type: 'abort', taskId: f.task.id, reason, code });
      },
      stopBackend: (handle, f, terminate) => this.#signalBackend(handle, f, terminate ? 'terminate' : 'cancel'),
      replaceWorker: (handle, f) => this.#replace(handle, `task ${f.task.id} passed its hard time limit`),
      killWorker: (handle) => {
        handle.killedForTimeLimit = true;
        this.#pool.kill(handle);
      },
    };
  }

  /**
   * How to find the server side of a task's connection: by its pid with its name, once the worker reported it; before
   * that (a connection reports once it has lived backendReportDelayMs, and a worker whose event loop a task
   * blocks never does), by its name alone when the server keeps the whole name. Null for a task not started.
   */
  #backendRef(handle: WorkerHandle, f: InFlightTask): BackendRef | null {
    const { schema } = this.#options;
    const applicationName = taskApplicationName(schema, handle.id, f.task.id);
    if (f.backendPid !== null) return { pid: f.backendPid, applicationName };
    return f.started && taskApplicationNameIsWhole(schema, handle.id, f.task.id) ? { pid: null, applicationName } : null;
  }

  /** A dead worker's queries may still run on the server: end them, so their locks and work go too. */
  async #terminateBackends(handle: WorkerHandle, inFlight: InFlightTask[]): Promise<void> {
    const backends = inFlight.flatMap((f) => this.#backendRef(handle, f) ?? []);
    if (backends.length === 0) return;
    try {
      const n = await signalBackends(this.#db, backends, 'terminate');
      this.#log.info({ event: 'orphan_backends_terminated', workerId: handle.id, terminated: n }, 'ended the dead worker\'s database sessions');
    } catch (error) {
      this.#log.warn({ event: 'orphan_backends_terminate_failed', err: error }, 'could not end the dead worker\'s database sessions');
    }
  }

  #taskMessageHandlers(): (handle: WorkerHandle) => MessageHandlers<WorkerMessage> {
    const ignore = () => {};
    return (handle) => ({
      ready: ignore,
      startup_failed: ignore,
      // An idle worker is at a task boundary: the memory its last task left is checked now, not after another.
      heartbeat: () => {
        if (handle.inFlight.size === 0) this.#maybeRecycle(handle);
      },
      budget_query: () => {
        if (this.#budget) handle.send({ type: 'budget', enforced: this.#budgetEnforced(), databaseUrl: this.#taskDatabaseUrl });
        else this.#budgetQueries.add(handle);
      },
      slot_acquire: (m) => this.#budget?.acquire(handle, m.requestId),
      slot_release: (m) => this.#budget?.release(handle, m.requestId),
      database_wait: (m) => {
        this.#log.warn({ event: 'worker_waiting_for_database', workerId: handle.id, workerPid: handle.pid, error: publicError(m.error) }, `worker waits for the database: ${m.error.message}`);
        this.#publishSoon();
      },
      db_backend: (m) => {
        const f = handle.inFlight.get(m.taskId);
        if (!f) return;
        f.backendPid = m.backendPid;
        if (!this.#budgetEnforced()) this.#openPeak = Math.max(this.#openPeak, this.#openConnections());
      },
      progress: (m) => {
        const f = handle.inFlight.get(m.taskId);
        if (!f) return;
        f.progress = m.progress;
        this.#progress.report({ id: f.task.id, attempt: f.task.attempt, progress: m.progress });
      },
      task_succeeded: (m) => {
        const f = handle.take(m.taskId);
        if (!f) return;
        handle.tasksDone += 1;
        this.#outcomes.succeeded(f, handle, m.result, m.resultSize);
        this.#maybeRecycle(handle);
        this.#dispatcher.slotsFreed();
      },
      unqueued: (m) => {
        const returned: InFlightTask[] = [];
        for (const id of m.taskIds) {
          const f = handle.take(id);
          if (f) returned.push(f);
        }
        this.#returnUnstarted(returned);
      },
      batch: ignore,
      // Replaced like a recycled worker: the replacement is forked now, the old one finishes what it runs.
      retire: (m) => this.#replace(handle, m.reason),
      task_failed: (m) => {
        const f = handle.take(m.taskId);
        if (!f) return;
        if (this.#abortedForStop.delete(f.task.id)) {
          this.#track(this.#release([f.task.id], 'aborted by the stop'));
          return;
        }
        handle.failures += 1;
        this.#outcomes.failed(f, handle, m.error);
        this.#maybeRecycle(handle);
        this.#dispatcher.slotsFreed();
      },
    });
  }

  /** Tasks a worker never started: to the front of the buffer, or back to the queue uncounted when stopping. */
  #returnUnstarted(tasks: InFlightTask[]): void {
    if (tasks.length === 0) return;
    const claimed = tasks.map((f) => f.task);
    if (this.#phase === 'running' && this.#dispatcher.putBack(claimed)) return;
    this.#track(this.#release(claimed.map((t) => t.id), 'not started before the stop'));
  }

  /** At a task boundary: a worker past its task count or memory limit is replaced. */
  #maybeRecycle(handle: WorkerHandle): void {
    const { maxTasksPerWorker, maxMemoryPerWorkerMb } = this.#options;
    if (maxTasksPerWorker && handle.tasksDone + handle.failures >= maxTasksPerWorker) {
      this.#replace(handle, `ran ${handle.tasksDone + handle.failures} tasks (--max-tasks-per-worker ${maxTasksPerWorker})`, 'recycle');
    } else if (maxMemoryPerWorkerMb && handle.rss !== null && handle.rss > maxMemoryPerWorkerMb * 1_048_576) {
      this.#replace(handle, `uses ${Math.round(handle.rss / 1_048_576)} MB (--max-memory-per-worker ${maxMemoryPerWorkerMb})`, 'recycle');
    }
  }

  /**
   * Replaces a ready worker while the supervisor runs: its replacement is forked now, and it takes no new task.
   * One already draining (recycled, reloading, past a hard limit) has its replacement coming.
   */
  #replace(handle: WorkerHandle, reason: string, kind: ReplaceKind = 'retire'): void {
    if (this.#phase === 'running' && handle.state === 'ready') this.#fleet.replace(handle, reason, kind);
  }

  #answerBudgetQueries(): void {
    for (const handle of this.#budgetQueries) handle.send({ type: 'budget', enforced: this.#budgetEnforced(), databaseUrl: this.#taskDatabaseUrl });
    this.#budgetQueries.clear();
  }

  /** Whether task connections must ask for a budget slot: only when the budget is below the task slots. */
  #budgetEnforced(): boolean {
    const slots = (this.#fleet?.wanted ?? this.#options.workers) * this.#options.concurrency;
    return this.#budget !== undefined && this.#budget.limit < slots;
  }

  /**
   * Rolling restart of every worker; resolves when the last old worker has left. Rejects with RELOAD_FAILED when
   * a new worker cannot start (the task module no longer loads, say): the workers not replaced yet, the one whose
   * replacement failed included, go on with the code they had. `snapshot().lastReload` tells either outcome.
   */
  reload(): Promise<void> {
    // Asked while starting: the workers may have loaded the module before it changed, so it runs once ready.
    if (this.#phase === 'starting') return (this.#reloadAfterStart ??= this.#startPromise!.then(() => this.reload(), () => {}));
    if (this.#phase !== 'running') return Promise.resolve();
    if (this.#reloading) {
      // Asked again while one runs (a second deploy): its workers may have loaded the module before this change,
      // so another reload follows, whatever the first's outcome. Further asks meanwhile wait for that one.
      this.#reloadAgain ??= this.#reloading
        .catch(() => {})
        .then(() => {
          this.#reloadAgain = undefined;
          return this.reload();
        });
      return this.#reloadAgain;
    }
    this.#reloading = this.#fleet
      .reload()
      .then(
        () => this.#reloadEnded(null),
        (error: unknown) => {
          this.#reloadEnded((error as Error).message ?? String(error));
          throw error;
        },
      )
      .finally(() => {
        this.#reloading = undefined;
        void this.#publish();
      });
    return this.#reloading;
  }

  #reloadEnded(error: string | null): void {
    const outcome = error === null ? 'succeeded' : 'failed';
    this.#lastReload = { seq: (this.#lastReload?.seq ?? 0) + 1, outcome, error, finishedAt: new Date().toISOString() };
    this.emit('reloadEnded', { outcome });
  }

  scale(workers: number): void {
    if (this.#phase !== 'running') return;
    const before = this.#budgetEnforced();
    this.#fleet.scale(workers);
    const enforced = this.#budgetEnforced();
    if (enforced !== before) for (const h of this.#pool.handles) h.send({ type: 'budget', enforced });
    this.#publishSoon();
  }

  #onControl(payload: string): void {
    const command = parseControl(payload, this.id);
    if (!command) return;
    if (command.command !== 'cancel') {
      this.#log.info({ event: 'control_command', command: command.command }, `${command.command} requested through the database`);
    }
    const handlers: ControlHandlers = {
      stop: () => void this.stop(),
      // A failed reload is logged (reload_failed) and published (lastReload).
      reload: () => void this.reload().catch(() => {}),
      scale: (c) => this.scale(c.workers),
      cancel: (c) => this.#cancel(c.taskId),
      paused: () => this.#track(this.#readPaused()),
    };
    (handlers[command.command] as (c: ControlCommand) => void)(command);
  }

  /** The task names this supervisor offers, with the attempts each gets when its row sets none. */
  #rememberTasks(): Promise<void> {
    const tasks = this.#offered.map((name) => ({ name, maxAttempts: this.#taskInfo.get(name)?.maxAttempts ?? this.#options.defaultMaxAttempts }));
    return rememberTaskNames(this.#db, this.#options.schema, tasks);
  }

  /**
   * Reads the paused task names. Newly paused: their tasks claimed and not yet handed to a worker go back to the
   * queue. Resumed: the dispatcher looks for their tasks.
   */
  async #readPaused(): Promise<void> {
    try {
      const paused = new Set((await pausedTasks(this.#db, this.#options.schema)).map((p) => p.name));
      const added = [...paused].filter((n) => !this.#paused.has(n));
      const removed = [...this.#paused].filter((n) => !paused.has(n));
      this.#paused = paused;
      if (added.length > 0 || removed.length > 0) this.#log.info({ event: 'paused_tasks', paused: [...paused] }, paused.size ? `paused: ${[...paused].join(', ')}` : 'no task paused');
      if (added.length > 0) {
        const ids = this.#dispatcher.unbufferNames(new Set(added));
        if (ids.length > 0) await this.#release(ids, 'its task was paused');
      }
      if (removed.length > 0) this.#dispatcher.wake();
    } catch (error) {
      this.#log.warn({ event: 'paused_read_failed', err: error }, 'could not read the paused tasks; trying again');
    }
  }

  /** Cancels the query a task's connection runs (nothing if it runs none), or ends its backend. */
  async #signalBackend(handle: WorkerHandle, f: InFlightTask, mode: 'cancel' | 'terminate'): Promise<void> {
    const ref = this.#backendRef(handle, f);
    if (!ref) return;
    try {
      await signalBackends(this.#db, [ref], mode);
    } catch (error) {
      this.#log.warn({ event: 'backend_signal_failed', err: error, taskId: f.task.id, backendPid: f.backendPid }, "could not cancel the task's query");
    }
  }

  /**
   * A running task was cancelled: abort its signal, and cancel the query it runs, which would otherwise hold it
   * until the query returned (a task waiting on the database cannot see its signal). Only that query: the task may
   * still write its clean-up on its connection. Its hard limit still applies.
   */
  #cancel(taskId: string): void {
    const buffered = this.#dispatcher.unbuffer(taskId);
    if (buffered) {
      this.#outcomes.cancelledBeforeStart(buffered);
      return;
    }
    for (const handle of this.#pool.handles) {
      const f = handle.inFlight.get(taskId);
      if (!f) continue;
      f.cancelled = true;
      handle.send({ type: 'abort', taskId, reason: 'the task was cancelled', code: 'CANCELLED' });
      if (f.started) this.#track(this.#signalBackend(handle, f, 'cancel'));
      return;
    }
  }

  /** Outcomes in the database: a retry due later gets a timer; a direct sender waiting for one gets it. */
  #onSettled(settled: Settlement[], finishedAt: Date, fenced: string[]): void {
    let limited = false;
    for (const s of settled) {
      if (s.state === 'queued' && s.delayMs) this.#dispatcher.wakeAt(Date.now() + s.delayMs);
      if (this.#limits.size > 0 && s.name !== undefined && this.#limits.get(s.name)?.maxRunning !== undefined) limited = true;
    }
    this.#direct.onSettled(settled, finishedAt, fenced);
    // A task of a name with maxRunning left its slot: every supervisor (this one too) may claim the next.
    if (limited) this.#track(notifyWake(this.#db, this.#options.schema).catch(() => this.#dispatcher.wake()));
  }

  // ---- status and leases ----------------------------------------------------------------------------------

  #maxAttemptsByName(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, info] of this.#taskInfo) if (info.maxAttempts !== undefined) out[name] = info.maxAttempts;
    return out;
  }

  snapshot() {
    const now = Date.now();
    return {
      id: this.id,
      host: this.host,
      pid: process.pid,
      state: this.#phase,
      startedAt: this.startedAt.toISOString(),
      concurrency: this.#options.concurrency,
      workersWanted: this.#fleet.wanted,
      // --queues: the only named queues it claims from (null: all).
      queues: this.#options.queues?.length ? this.#options.queues : null,
      reloading: this.#reloading !== undefined || this.#reloadAgain !== undefined,
      lastReload: this.#lastReload,
      startupFailure: this.#fleet.lastStartupFailure,
      workers: this.#pool.handles.map((h) => h.snapshot(now, this.#options.heartbeatMs)),
      pendingOutcomes: this.#settler.pending,
      // Claimed and not started: in the primary's buffer or queued on a worker.
      buffered: this.#dispatcher.buffered + this.#pool.handles.reduce((n, h) => n + h.queued, 0),
      dbConnections: this.#connectionsSnapshot(),
      schedules: this.#scheduler.armed(),
      // Those of the newest module (a name a reload dropped keeps its entry while old workers may still run it).
      limits: [...this.#limits].filter(([name]) => this.#offered.includes(name)).map(([name, l]) => ({ name, maxRunning: l.maxRunning ?? null, rateLimit: l.rateLimit ?? null })),
      paused: [...this.#paused],
    };
  }

  #connectionsSnapshot() {
    if (!this.#budget) return null;
    const enforced = this.#budgetEnforced();
    const budget = this.#budget.snapshot();
    if (enforced) return { ...budget, enforced };
    // Not enforced (the budget exceeds every task slot): count the tasks whose worker reported a connection.
    return { ...budget, inUse: this.#openConnections(), peak: this.#openPeak, enforced };
  }

  /** Task connections the workers reported (those open longer than backendReportDelayMs). */
  #openConnections(): number {
    return this.#pool.handles.reduce((n, h) => n + [...h.inFlight.values()].filter((f) => f.backendPid !== null).length, 0);
  }

  async #publish(state: SupervisorState = this.#phase === 'stopping' ? 'stopping' : 'running'): Promise<void> {
    try {
      this.#publishedAt = performance.now();
      const snapshot = this.snapshot();
      for (const h of this.#pool.handles) h.published();
      const previous = await heartbeat(this.#db, this.#options.schema, this.id, {
        state,
        tasks: this.#offered,
        snapshot,
        socketPath: state === 'running' ? this.#direct.socketPath : null,
      });
      this.#databaseOkAt = performance.now();
      this.#databaseFailing = false;
      if (previous === 'lost') {
        this.#log.error({ event: 'lease_lost' }, 'another supervisor presumed this one dead and took its tasks back; their outcomes here are fenced out; the lease is renewed');
      }
    } catch (error) {
      this.#databaseFailing = true;
      this.#log.warn({ event: 'heartbeat_failed', err: error }, 'could not renew the lease');
    }
  }

  /** Publishes the snapshot in 50 ms, or `minIntervalMs` after the last publish if that is later. */
  #publishSoon(minIntervalMs = 0): void {
    if (this.#snapshotTimer || this.#tearingDown || (this.#phase !== 'running' && this.#phase !== 'stopping')) return;
    const wait = Math.max(50, this.#publishedAt + minIntervalMs - performance.now());
    this.#snapshotTimer = setTimeout(() => {
      this.#snapshotTimer = undefined;
      void this.#publish();
    }, wait);
  }

  /**
   * A dead supervisor's workers exit when their IPC channel closes, but one whose event loop a task blocks (CPU-bound
   * code) never sees it close: it runs on, its task and connection with it, and no hard limit applies any more (the
   * primary kept it). Such a worker is found by the supervisor id in its initial environment and killed.
   */
  #killOrphanWorkers(deadSupervisorIds: readonly string[]): void {
    const pids = orphanWorkerPids(deadSupervisorIds);
    if (pids.length === 0) return;
    const killed = pids.filter((pid) => {
      try {
        process.kill(pid, 'SIGKILL');
        return true;
      } catch {
        return false; // gone meanwhile, or not ours to signal
      }
    });
    this.#log.warn(
      { event: 'orphan_workers_killed', pids: killed, deadSupervisors: deadSupervisorIds },
      `killed ${killed.length} worker${killed.length === 1 ? '' : 's'} left running by a dead supervisor on this host`,
    );
  }

  async #recover(): Promise<void> {
    try {
      const dead = await deadSupervisorsOnHost(this.#db, this.#options.schema, this.host, pidScope(), this.id);
      // Before their tasks go back: a worker of a dead supervisor still running one would run it beside its new attempt.
      this.#killOrphanWorkers(dead);
      const { requeued, failed } = await recoverOrphans(this.#db, this.#options.schema, {
        supervisorId: this.id,
        leaseMs: this.#options.leaseMs,
        deadSupervisorIds: dead,
        maxAttemptsByName: this.#maxAttemptsByName(),
        defaultMaxAttempts: this.#options.defaultMaxAttempts,
      });
      if (requeued + failed > 0) {
        this.#log.warn({ event: 'orphans_recovered', requeued, failed, deadSupervisors: dead }, 'recovered tasks of a lost supervisor');
        this.#dispatcher.wake();
      }
    } catch (error) {
      this.#log.warn({ event: 'recover_failed', err: error }, 'could not look for orphaned tasks');
    }
  }

  /**
   * Gives back the tasks the database says this supervisor runs and it does not know of (a claim or insert whose
   * reply was lost with its connection, a release that failed). Not while a claim or insert awaits its reply:
   * its tasks are in the database before they are in memory.
   */
  async #releaseLost(): Promise<void> {
    if (this.#phase !== 'running' || this.#dispatcher.claiming || this.#direct.inserting) return;
    const held = [
      ...this.#dispatcher.bufferedIds(),
      ...this.#pool.handles.flatMap((h) => [...h.inFlight.keys()]),
      ...this.#settler.heldIds(),
    ];
    try {
      const ids = await releaseLost(this.#db, this.#options.schema, this.id, Math.min(lostClaimAgeMs, this.#options.leaseMs), held);
      if (ids.length > 0) {
        this.#log.warn({ event: 'lost_claims_released', taskIds: ids }, 'tasks running under this supervisor that it did not know of (a reply lost with its connection) went back to the queue');
        this.#dispatcher.wake();
      }
    } catch (error) {
      this.#log.warn({ event: 'release_lost_failed', err: error }, 'could not look for lost claims');
    }
  }

  async #deleteFinished(olderThanMs: number): Promise<void> {
    try {
      const n = await deleteFinished(this.#db, this.#options.schema, olderThanMs);
      if (n > 0) this.#log.info({ event: 'finished_tasks_deleted', deleted: n }, 'deleted old finished tasks');
    } catch (error) {
      this.#log.warn({ event: 'retention_failed', err: error }, 'could not delete old finished tasks');
    }
  }

  #every(ms: number, fn: () => Promise<void>): NodeJS.Timeout {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void fn().finally(() => {
        busy = false;
      });
    }, ms);
    this.#timers.push(timer);
    return timer;
  }

  // ---- stop -----------------------------------------------------------------------------------------------

  async #stop(forced: boolean): Promise<void> {
    // A start still waiting for its workers or its database ends here (and tears down what it made).
    this.#startAbort.abort();
    this.#startupError?.(stoppedDuringStart());
    await this.#startPromise?.catch(() => {});
    if (this.#phase === 'stopped') return;
    this.#phase = 'stopping';
    this.#scheduler.stop();
    this.#direct.stopAccepting();
    this.#fleet.stopRespawning();
    this.#dispatcher.pause();
    this.#track(this.#dispatcher.releaseBuffered().catch((error) => this.#log.warn({ event: 'release_failed', err: error }, 'could not give back the buffered tasks; they return when the lease expires')));
    // Tasks queued on workers come back (`unqueued`) and are released like the buffer.
    for (const h of this.#pool.handles) h.send({ type: 'unqueue' });
    this.#log.info({ event: 'supervisor_stopping', inFlight: this.#pool.inFlight, forced }, 'stopping: no new tasks, waiting for running ones');
    void this.#publish('stopping');
    if (!forced && !(await until(() => this.#pool.inFlight === 0, this.#options.shutdownTimeoutMs))) {
      this.#log.warn({ event: 'shutdown_timeout', inFlight: this.#pool.inFlight }, 'shutdown timeout passed: aborting running tasks');
      for (const h of this.#pool.handles) {
        for (const id of h.inFlight.keys()) {
          this.#abortedForStop.add(id);
          h.send({ type: 'abort', taskId: id, reason: 'the supervisor is stopping', code: 'SHUTDOWN' });
        }
      }
      if (!(await until(() => this.#pool.inFlight === 0, Math.min(5_000, this.#options.shutdownTimeoutMs)))) {
        await this.#abandonInFlight(this.#pool.handles.filter((h) => h.inFlight.size > 0), 'shutdown timeout');
      }
    }
    await this.#teardown('stopped');
    this.#phase = 'stopped';
    this.#log.info({ event: 'supervisor_stopped' }, 'stopped');
    this.emit('stopped');
  }

  /** Kills the workers and returns their running tasks to the queue without counting the attempt. */
  async #abandonInFlight(handles: WorkerHandle[], reason: string): Promise<void> {
    const ids: string[] = [];
    for (const h of handles) {
      ids.push(...h.takeAll().map((f) => f.task.id));
      h.state = 'stopping';
      this.#pool.kill(h);
    }
    await this.#release(ids, reason);
  }

  async #release(ids: string[], reason: string): Promise<void> {
    if (ids.length === 0) return;
    try {
      await releaseTasks(this.#db, this.#options.schema, this.id, ids);
      this.#log.warn({ event: 'tasks_released', taskIds: ids, reason }, 'running tasks returned to the queue');
    } catch (error) {
      this.#log.error({ event: 'release_failed', err: error, taskIds: ids }, 'could not return tasks to the queue; another supervisor will reclaim them when this lease expires');
    }
  }

  #track(promise: Promise<unknown>): void {
    this.#background.add(promise);
    void promise.finally(() => this.#background.delete(promise));
  }

  async #teardown(finalState: SupervisorState): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    // Workers exiting below would publish again, after the pool ended: only the final publish goes out.
    this.#tearingDown = true;
    clearTimeout(this.#snapshotTimer);
    this.#snapshotTimer = undefined;
    this.#dispatcher.pause();
    if (!(await this.#settler.drain(10_000))) {
      this.#log.error({ event: 'outcomes_unrecorded', pending: this.#settler.pending }, 'could not record some outcomes before stopping; those tasks will run again after the lease expires');
    }
    for (const h of this.#pool.handles) this.#pool.retire(h);
    if (!(await until(() => this.#pool.size === 0, 10_000))) {
      for (const h of this.#pool.handles) this.#pool.kill(h);
      await until(() => this.#pool.size === 0, 5_000);
    }
    this.#pool.close();
    await Promise.allSettled([...this.#background]);
    // What the tasks said of their progress last, before the pool closes (not waiting long for a database away).
    await Promise.race([this.#progress.flush(), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    this.#progress.close();
    this.#direct.close();
    await this.#listener.close();
    if (this.#phase !== 'starting' || this.#everReady) await this.#publish(finalState);
    else await heartbeat(this.#db, this.#options.schema, this.id, { state: finalState, tasks: [], snapshot: {} }).catch(() => {});
    await endPool(this.#db);
  }
}

/** A stop asked for while the start waited (for its database or its workers). */
function stoppedDuringStart(): PreforkError {
  return new PreforkError('STOPPED_DURING_START', 'stopped before every worker was ready', { exitCode: 1 });
}

function toStartError(error: unknown): PreforkError {
  if (error instanceof PreforkError) return error;
  const e = error as { code?: string; message?: string };
  return new PreforkError('DATABASE_UNREACHABLE', `could not use the database: ${e?.message ?? String(error)}`, { cause: error, exitCode: 3 });
}

/** `--prefetch N` fixes the buffer; by default it starts at 2 × task slots and grows with the throughput. */
function prefetchRange(options: SupervisorOptions): { prefetch: number; maxPrefetch: number } {
  if (options.prefetch !== undefined) return { prefetch: options.prefetch, maxPrefetch: options.prefetch };
  const base = 2 * options.workers * options.concurrency;
  return { prefetch: base, maxPrefetch: Math.max(base, maxAutoPrefetch) };
}

/** The schedules among a task module's tasks. */
function schedulesOf(tasks: readonly TaskInfo[]): ScheduledTask[] {
  return tasks.flatMap((info) => (info.schedule ? [{ name: info.name, ...info.schedule }] : []));
}

/** How the last reload of a supervisor ended (`seq` counts the reloads that ended). */
export interface LastReload {
  seq: number;
  outcome: 'succeeded' | 'failed';
  error: string | null;
  finishedAt: string;
}
