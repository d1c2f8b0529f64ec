/**
 * The worker process: forked by the primary with node:cluster. Imports the task module, runs the start-up
 * hooks (the first resets the connection cache), reports ready, then runs the tasks the primary sends over
 * IPC until told to shut down. It never polls the database for work.
 */
import cluster from 'node:cluster';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connectionCache } from '../db/connection-cache.js';
import { coerceError, serializeError } from '../errors.js';
import { createLogger } from '../logger.js';
import { dispatchMessage, isPrimaryMessage, type MessageHandlers, type PrimaryMessage, type WorkerMessage } from '../protocol.js';
import { decodeWorkerConfig } from './worker-config.js';
import { runTask } from './run-task.js';
import { registeredStartHooks } from './startup-hooks.js';
import { loadTaskModule, TaskRegistry } from './task-registry.js';
import { withTimeout } from '../timeout.js';
import { ConnectionSlots } from './connection-slots.js';
import { waitForDatabase } from './database-check.js';

const config = { ...decodeWorkerConfig(process.env), workerId: cluster.worker?.id ?? 0 };
const log = createLogger({ level: config.logLevel, format: config.logFormat, base: { role: 'worker', workerId: config.workerId } });

function send(message: WorkerMessage): void {
  if (process.connected) process.send?.(message);
}

// The primary owns the lifecycle: Ctrl-C reaches the whole process group, but only the primary decides
// when a worker stops, after its tasks finish.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

const registry = new TaskRegistry();
const slots = new ConnectionSlots(send);
let budgetEnforced = config.budgetEnforced;
const running = new Map<string, AbortController>();
let shuttingDown = false;

async function start(): Promise<void> {
  log.info({ event: 'worker_process_init' }, 'worker process started');
  if (config.tasksUrl) await loadTaskModule(registry, config.tasksUrl);
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
  await waitForDatabase({
    databaseUrl: config.databaseUrl,
    applicationName: `prefork:${config.schema} w${config.workerId} check`.slice(0, 63),
    timeoutMs: config.session.connectTimeoutMs || 10_000,
    slots: budgetEnforced ? slots : null,
    log,
    onWaiting: (error) => send({ type: 'database_wait', error }),
  });
}

const handlers: MessageHandlers<PrimaryMessage> = {
  run: ({ task }) => {
    const controller = new AbortController();
    running.set(task.id, controller);
    void runTask(task, controller, {
      registry,
      workerId: config.workerId,
      databaseUrl: config.databaseUrl,
      schema: config.schema,
      connectionSlot: budgetEnforced ? () => slots.slot() : undefined,
      session: config.session,
      log,
      send,
    }).finally(() => {
      running.delete(task.id);
      if (shuttingDown && running.size === 0) void exit(0);
    });
  },
  abort: ({ taskId, reason }) => {
    running.get(taskId)?.abort(new Error(reason));
  },
  shutdown: () => {
    shuttingDown = true;
    if (running.size === 0) void exit(0);
  },
  slot_granted: ({ requestId }) => slots.granted(requestId),
  budget: ({ enforced }) => {
    budgetEnforced = enforced;
  },
};

process.on('message', (message: unknown) => {
  if (isPrimaryMessage(message)) dispatchMessage(handlers, message);
});

async function exit(code: number): Promise<never> {
  await connectionCache.reset().catch(() => {});
  process.exit(code);
}

function startHeartbeat(): void {
  const resolutionMs = 20;
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

try {
  await withTimeout(start(), config.startupTimeoutMs * 2, `worker start-up did not finish within ${config.startupTimeoutMs * 2} ms`);
  startHeartbeat();
  await checkDatabase();
  send({ type: 'ready', pid: process.pid, tasks: registry.info() });
  log.info({ event: 'worker_startup_done', tasks: registry.info().length }, 'start-up done; reported ready');
} catch (error) {
  const serialized = serializeError(error);
  log.error({ event: 'worker_startup_failed', err: coerceError(error) }, serialized.message);
  send({ type: 'startup_failed', error: serialized });
  // Give the IPC message a moment to leave before the process goes.
  setTimeout(() => void exit(1), 50);
}
