/**
 * The worker process: forked by the primary with node:cluster. Imports the task module, runs the start-up
 * hooks (the first resets the connection cache), reports ready, then runs the tasks the primary sends over
 * IPC until told to shut down. It never polls the database for work.
 */
import '../db/load-pg.js'; // first, before anything imports pg
import { AsyncLocalStorage } from 'node:async_hooks';
import cluster from 'node:cluster';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connectionCache } from '../db/connection-cache.js';
import type { TaskConnection } from '../db/task-connection.js';
import { coerceError, PreforkError, serializeError } from '../errors.js';
import { createLogger } from '../logger.js';
import { dispatchMessage, isPrimaryMessage, type MessageHandlers, type PrimaryMessage, type TaskEnvelope, type WorkerMessage } from '../protocol.js';
import { takeWorkerConfig } from './worker-config.js';
import { runTask } from './run-task.js';
import { registeredStartHooks } from './startup-hooks.js';
import { loadTaskModule, TaskRegistry } from './task-registry.js';
import { withTimeout } from '../timeout.js';
import { ConnectionSlots } from './connection-slots.js';
import { LazyAbortController } from './lazy-abort.js';
import { loadKysely } from '../db/kysely-module.js';
import { compactMemory, memoryCompactionSupported } from './compact-memory.js';
import { waitForDatabase } from './database-check.js';

const config = { ...takeWorkerConfig(process.env), workerId: cluster.worker?.id ?? 0 };
const log = createLogger({ level: config.logLevel, format: config.logFormat, base: { role: 'worker', workerId: config.workerId } });

/**
 * What the worker says within one turn of its event loop leaves in one IPC write (each write is a system
 * call, and short tasks finish many per turn), in the order said.
 */
let outbox: WorkerMessage[] = [];
function send(message: WorkerMessage): void {
  // Scheduled outside any task's scope: a failed write is not charged to the task that happened to say something.
  if (outbox.length === 0) {
    if (taskScope) taskScope.exit(() => setImmediate(flush));
    else setImmediate(flush);
  }
  outbox.push(message);
}
/** Writes the outbox; `written` runs once the write is done (or there was nothing to write). */
function flush(written?: () => void): void {
  const messages = outbox;
  outbox = [];
  if (messages.length === 0 || !process.connected || !process.send) return void written?.();
  process.send(messages.length === 1 ? messages[0] : { type: 'batch', messages }, undefined, {}, () => written?.());
}

// The primary owns the lifecycle: Ctrl-C reaches the whole process group, but only the primary decides
// when a worker stops, after its tasks finish.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

const registry = new TaskRegistry();
const slots = new ConnectionSlots(send);
let budgetEnforced = config.budgetEnforced;
/** Resolves once the worker knows whether its connections take budget slots (see WorkerConfig.budgetEnforced). */
let budgetKnown: (() => void) | undefined;
const budgetAnswered = budgetEnforced === null ? new Promise<void>((resolve) => (budgetKnown = resolve)) : Promise.resolve();
/** A task running here: what the worker may need to end it. */
interface RunningTask {
  /** The task's ctx.signal: aborted by a cancel, a soft limit, a stop, and by the end of the attempt. */
  signal: LazyAbortController;
  /**
   * What ends its connection's waits (a budget slot, connect retries) and ctx.transaction's reruns: only the
   * end of the attempt (its hard limit, a stray error). A cancel, a soft limit or a stop aborts `signal` alone,
   * so that the task can still write its clean-up.
   */
  over: LazyAbortController;
  /** Its database connection, once it opened one. */
  connection?: TaskConnection;
}
const running = new Map<string, RunningTask>();
/**
 * Which task's code is running, across its callbacks and promises: what an uncaught exception or an unhandled
 * rejection is charged to (see onStrayError). With one task at a time that is the task running, if any; with
 * several, an AsyncLocalStorage scope per task tells. Only then, as on Node 20 and 22 it slows every promise of
 * the process (measured: W1 throughput 15–18k → 12–14k tasks/s with a scope per task on Node 20).
 */
const taskScope = config.concurrency > 1 ? new AsyncLocalStorage<string>() : null;
function currentTask(): string | undefined {
  if (taskScope) return taskScope.getStore();
  return running.size === 1 ? running.keys().next().value : undefined;
}
/**
 * Tasks whose code threw where nothing caught it (see onStrayError): what they report later is dropped (one still
 * running was failed there), and a further stray error of theirs is logged at `debug` (an interval that keeps
 * throwing until the worker leaves).
 */
const strayTasks = new Set<string>();
/** A stray error happened here: the worker runs no new task and waits to be replaced. */
let retiring = false;
/** Received and not started: they start in this order, `concurrency` at a time. */
const queue: TaskEnvelope[] = [];
let shuttingDown = false;

async function start(): Promise<void> {
  log.info({ event: 'worker_process_init' }, 'worker process started');
  // Bounded as a start-up hook is: a top-level await that never settles would otherwise hold the start, silently.
  if (config.tasksUrl) {
    await withTimeout(
      loadTaskModule(registry, config.tasksUrl),
      config.startupTimeoutMs,
      `the task module did not finish loading within ${config.startupTimeoutMs} ms (a top-level await that never settles?)`,
    );
  }
  // Built-in hook, always first: whatever a handle was opened before this point (at import time, or
  // inherited state of any kind) is closed and dropped. Tasks open their own connections.
  const reset = await connectionCache.reset();
  log.info(
    { event: 'db_connection_cache_reset', closed: reset.closed.length, keys: reset.closed, errors: reset.errors.length },
    'connection cache reset',
  );
  for (const { key, error } of reset.errors) {
    log.warn({ event: 'db_connection_cache_close_failed', key, err: coerceError(error) }, 'a cached connection failed to close; dropped');
  }
  for (const hook of registeredStartHooks()) {
    const name = hook.name || 'anonymous';
    await withTimeout(
      Promise.resolve().then(() => hook({ workerId: config.workerId, pid: process.pid, log })),
      config.startupTimeoutMs,
      `start-up hook ${name} did not finish within ${config.startupTimeoutMs} ms`,
    );
    log.debug({ event: 'worker_start_hook_done', hook: name }, 'start-up hook finished');
  }
}

/** Ready only once the database answers; the message handlers must already run (slot grants). */
async function checkDatabase(): Promise<void> {
  await budgetAnswered;
  const version = await waitForDatabase({
    databaseUrl: config.databaseUrl,
    applicationName: `prefork:${config.schema} w${config.workerId} check`.slice(0, 63),
    timeoutMs: config.session.connectTimeoutMs || 10_000,
    slots: budgetEnforced ? slots : null,
    log,
    onWaiting: (error) => send({ type: 'database_wait', error }),
  });
  // Older servers reject the setting; there, only the supervisor's termination of the backend helps.
  if (version < 140000) config.session.clientConnectionCheckIntervalMs = undefined;
}

function startNext(): void {
  if (retiring) return;
  while (running.size < config.concurrency && queue.length > 0) startTask(queue.shift()!);
}

/** What a task's run reports; nothing once the task was failed for a stray error. */
function sendForTask(message: WorkerMessage): void {
  if ('taskId' in message && strayTasks.has(message.taskId)) return;
  send(message);
}

function startTask(task: TaskEnvelope): void {
  const entry: RunningTask = { signal: new LazyAbortController(), over: new LazyAbortController() };
  running.set(task.id, entry);
  const deps = {
    attemptOver: entry.over,
    registry,
    workerId: config.workerId,
    databaseUrl: config.databaseUrl,
    schema: config.schema,
    connectionSlot: budgetEnforced ? () => slots.slot() : undefined,
    session: config.session,
    log,
    send: sendForTask,
    onConnection: (connection: TaskConnection) => (entry.connection = connection),
  };
  const run = () => runTask(task, entry.signal, deps);
  void (taskScope ? taskScope.run(task.id, run) : run()).finally(() => {
    if (running.get(task.id) === entry) running.delete(task.id);
    startNext();
    if (shuttingDown && running.size === 0) void exit(0);
  });
}

/** Gives the queued tasks back to the primary: another worker runs them. */
function unqueue(): void {
  const taskIds = queue.splice(0).map((t) => t.id);
  send({ type: 'unqueued', taskIds });
}

/**
 * Code of a task threw where nothing could catch it: an exception in a callback it scheduled, a promise it did not
 * await. Node would end the process, and with it every task beside that one. Here that task's attempt fails with
 * the error (retried like any failure), its later report is dropped, and the worker asks to be replaced: it starts
 * nothing new, gives back what it has queued, and leaves once the tasks still running finish, so whatever state
 * the error left behind goes with it. An error from no task's code (prefork's own, or a task module's timer set at
 * import) ends the worker as before: its tasks go to other workers.
 */
function onStrayError(kind: 'uncaught exception' | 'unhandled rejection', error: unknown): void {
  const taskId = currentTask();
  if (taskId === undefined) {
    log.fatal({ event: 'worker_uncaught_error', kind, err: coerceError(error) }, `${kind} outside any task; the worker exits`);
    void exit(1);
    return;
  }
  const entry = running.get(taskId);
  const fields = { event: 'task_uncaught_error', kind, taskId, stillRunning: entry !== undefined, err: coerceError(error) };
  if (strayTasks.has(taskId)) log.debug(fields, `${kind} in the code of task ${taskId}, again`);
  else log.error(fields, `${kind} in the code of task ${taskId}; the worker will be replaced`);
  strayTasks.add(taskId);
  if (entry) {
    running.delete(taskId);
    entry.signal.abort(new Error(`the task failed: ${kind}`));
    entry.over.abort(new Error(`the task failed: ${kind}`));
    // Closed now, not when the worker leaves: a transaction it holds open would keep its locks until then.
    void entry.connection?.close();
    const serialized = serializeError(error);
    const code = serialized.code ?? (kind === 'uncaught exception' ? 'UNCAUGHT_EXCEPTION' : 'UNHANDLED_REJECTION');
    send({ type: 'task_failed', taskId, error: { ...serialized, code } });
  }
  if (!retiring) {
    retiring = true;
    unqueue();
    send({ type: 'retire', reason: `${kind} in task ${taskId}` });
  }
  if (shuttingDown && running.size === 0) void exit(0);
}
process.on('uncaughtException', (error) => onStrayError('uncaught exception', error));
process.on('unhandledRejection', (reason) => onStrayError('unhandled rejection', reason));

const handlers: MessageHandlers<PrimaryMessage> = {
  run: ({ tasks }) => {
    queue.push(...tasks);
    // Sent before the primary heard this worker asked to be replaced: straight back.
    if (retiring) unqueue();
    else startNext();
  },
  abort: ({ taskId, reason, code, final }) => {
    const waiting = queue.findIndex((t) => t.id === taskId);
    if (waiting >= 0) {
      queue.splice(waiting, 1);
      send({ type: 'task_failed', taskId, error: serializeError(new PreforkError('ABORTED', `${reason} before the task started`)) });
      return;
    }
    const entry = running.get(taskId);
    // Its code tells the task why (a cancel, a time limit, the stop), without reading the message. A primary of an
    // earlier version (prefork upgraded on disk, then a reload forks this worker) sends none.
    const why = new PreforkError(code ?? 'ABORTED', reason);
    entry?.signal.abort(why);
    if (final) entry?.over.abort(why);
  },
  unqueue,
  shutdown: () => {
    shuttingDown = true;
    unqueue();
    if (running.size === 0) void exit(0);
  },
  slot_granted: ({ requestId }) => slots.granted(requestId),
  budget: ({ enforced, databaseUrl }) => {
    budgetEnforced = enforced;
    if (databaseUrl) config.databaseUrl = databaseUrl;
    budgetKnown?.();
  },
};

process.on('message', (message: unknown) => {
  if (isPrimaryMessage(message)) dispatchMessage(handlers, message);
});

async function exit(code: number): Promise<never> {
  // What was said last (the final outcomes, the tasks given back) must reach the primary before the exit.
  await withTimeout(new Promise<void>((resolve) => flush(resolve)), 1_000, 'IPC write').catch(() => {});
  await connectionCache.reset().catch(() => {});
  process.exit(code);
}

function startHeartbeat(): void {
  // The sampler's timer wakes an idle worker at this period. At 20 ms an idle worker woke ~100 times a second
  // (about 0.5 % of a core on these VMs); at 100 ms ~23, and every stall of 100 ms or more is still caught.
  const resolutionMs = 100;
  const lag = monitorEventLoopDelay({ resolution: resolutionMs });
  lag.enable();
  const timer = setInterval(() => {
    // The histogram measures timer-to-timer time; what exceeds the resolution is the loop's lag.
    const loopLagMs = Math.max(0, Math.round((lag.max / 1e6 - resolutionMs) * 100) / 100);
    send({ type: 'heartbeat', rss: process.memoryUsage.rss(), loopLagMs });
    lag.reset();
  }, config.heartbeatMs);
  timer.unref();
}

/**
 * Start-up is over: the first time in its first 30 s that the worker is idle (nothing running or waiting), V8 is
 * asked once to give back what start-up grew (compact-memory.ts). A worker busy all that time keeps its young
 * generation, which its tasks use.
 */
function compactWhenIdle(): void {
  if (!memoryCompactionSupported()) return;
  let checksLeft = 30;
  const timer = setInterval(() => {
    if (shuttingDown || checksLeft-- <= 0) return clearInterval(timer);
    if (running.size > 0 || queue.length > 0) return;
    clearInterval(timer);
    const c = compactMemory();
    log.debug({ event: 'worker_memory_compacted', ...c }, `gave back start-up memory: RSS ${c.rssBeforeMb} → ${c.rssAfterMb} MB in ${c.ms} ms`);
  }, 1_000);
  timer.unref();
}

try {
  // Asked only now: an answer that came before the message listener was attached would be lost.
  if (budgetEnforced === null) send({ type: 'budget_query' });
  // The database check runs beside the import and the hooks, on a connection of its own (not in the cache).
  const databaseChecked = checkDatabase();
  databaseChecked.catch(() => {}); // reported below, once start-up itself went well
  // ctx.db needs kysely: loaded before ready, beside the task module, so that ready means a task runs at once.
  // Loaded after ready, it saved each worker ~150 ms of CPU before ready, but the tasks sent at ready waited for it
  // (W1 right after a start: 15-16k against 18-22k tasks/s); and a task module that imports kysely loads it anyway.
  const kyselyLoaded = loadKysely();
  kyselyLoaded.catch(() => {}); // awaited below
  await withTimeout(start(), config.startupTimeoutMs * 2, `worker start-up did not finish within ${config.startupTimeoutMs * 2} ms`);
  startHeartbeat();
  await Promise.all([databaseChecked, kyselyLoaded]);
  send({ type: 'ready', pid: process.pid, tasks: registry.info() });
  log.info({ event: 'worker_startup_done', tasks: registry.info().length }, 'start-up done; reported ready');
  compactWhenIdle();
} catch (error) {
  const serialized = serializeError(error);
  log.error({ event: 'worker_startup_failed', err: coerceError(error) }, serialized.message);
  send({ type: 'startup_failed', error: serialized });
  // Give the IPC message a moment to leave before the process goes.
  setTimeout(() => void exit(1), 50);
}
