import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { redactConnectionString } from '../../db/connection-string.js';
import { PreforkError } from '../../errors.js';
import { originsOf } from '../../config/origins.js';
import { createLogger, resolveLogFormat } from '../../logger.js';
import type { Supervisor } from '../../primary/supervisor.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { handleStopSignals } from '../../signals.js';
import { resolveDatabase, type DatabaseFlags } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import { integer, logLevel, queueList } from '../parse.js';
import { addDatabaseOptions } from './common.js';

interface StartFlags extends DatabaseFlags {
  workers?: number;
  concurrency: number;
  tasks?: string;
  logLevel: string;
  shutdownTimeout: number;
  maxAttempts: number;
  softTimeout?: number;
  hardTimeout?: number;
  maxTasksPerWorker?: number;
  maxMemoryPerWorker?: number;
  maxDbConnections?: number;
  prefetch?: number;
  queues?: string[];
  lease: number;
  keepFinished: number;
  localSocket: boolean;
  statementTimeout: number;
  lockTimeout: number;
  idleInTransactionTimeout: number;
  connectTimeout: number;
  connectRetries: number;
  metricsPort?: number;
  metricsHost: string;
  pretty?: boolean;
}

export function startCommand(): Command {
  const command = new Command('start').description('run a supervisor in the foreground: a primary process that forks workers and feeds them tasks');
  addStartOptions(command);
  command.addHelpText(
    'after',
    `
Without --database-url or DATABASE_URL, an embedded PostgreSQL runs with the supervisor; its data stays in
--data-dir (default ./.prefork/pgdata) between runs, and send, status and stop run here find it.

Every option can also be set in the environment, as PREFORK_ and the long flag in capitals (--max-db-connections:
PREFORK_MAX_DB_CONNECTIONS; --database-url: also DATABASE_URL), or in a JSON config file (--config, default
./prefork.config.json when present) under its camelCase name: {"workers": 4, "maxDbConnections": 20}.
A flag wins over the environment, the environment over the file. "prefork config" shows what start would use.

With --metrics-port, GET /metrics serves Prometheus metrics, GET /healthz answers 200 while the supervisor
runs (503 while it starts or stops: a liveness check), and GET /readyz 200 while it also reaches its database
and has a ready worker (a readiness check: 503 during a database outage, which it rides out by itself).

Examples:
  $ prefork start --workers 4 --tasks ./tasks.js
  $ DATABASE_URL=postgres://app@db/app prefork start -w 2 -c 4 --tasks ./dist/tasks.js
  $ PREFORK_WORKERS=8 prefork start --metrics-port 9100`,
  );
  return command.action(runStart);
}

/** start's options; `prefork config` takes the same ones to show their effective values. */
export function addStartOptions(command: Command): Command {
  command
    .option('-w, --workers <n>', 'worker processes (default: available parallelism)', integer('--workers', 1, 1024))
    .option('-c, --concurrency <n>', 'tasks one worker runs at once', integer('--concurrency', 1, 1000), supervisorDefaults.concurrency)
    .option('-t, --tasks <path>', 'ES module whose default export maps task names to handlers')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', logLevel, supervisorDefaults.logLevel)
    .option('--shutdown-timeout <ms>', 'on stop, how long running tasks may take before they are aborted', integer('--shutdown-timeout', 0, 86_400_000), supervisorDefaults.shutdownTimeoutMs)
    .option('--max-attempts <n>', 'attempts per task when neither the task nor the send says', integer('--max-attempts', 1, 1_000_000), supervisorDefaults.defaultMaxAttempts)
    .option('--soft-timeout <ms>', "default soft time limit: the task's signal aborts", integer('--soft-timeout', 1, 2_147_483_647))
    .option('--hard-timeout <ms>', 'default hard time limit: query cancelled, backend terminated, worker killed and replaced', integer('--hard-timeout', 1, 2_147_483_647))
    .option('--max-tasks-per-worker <n>', 'replace a worker after it ran this many tasks', integer('--max-tasks-per-worker', 1, 1_000_000_000))
    .option('--max-memory-per-worker <mb>', 'replace a worker whose resident memory passed this many MB', integer('--max-memory-per-worker', 16, 1_000_000))
    .option('--max-db-connections <n>', "task connections open at once across all workers (default: from the server's max_connections)", integer('--max-db-connections', 1, 100_000))
    .option('--prefetch <n>', 'tasks claimed ahead of free slots and queued on workers (default: automatic, up to 1,000; 0: none)', integer('--prefetch', 0, 100_000))
    .option('--queues <names>', 'claim only from these named queues (comma-separated; default: all)', queueList)
    .option('--lease <ms>', "a supervisor silent this long is presumed dead and its tasks are reclaimed", integer('--lease', 1_000, 86_400_000), supervisorDefaults.leaseMs)
    .option('--statement-timeout <ms>', "task connections' statement_timeout (0: none)", integer('--statement-timeout', 0, 2_147_483_647), supervisorDefaults.session.statementTimeoutMs)
    .option('--lock-timeout <ms>', "task connections' lock_timeout (0: none)", integer('--lock-timeout', 0, 2_147_483_647), supervisorDefaults.session.lockTimeoutMs)
    .option('--idle-in-transaction-timeout <ms>', "task connections' idle_in_transaction_session_timeout (0: none)", integer('--idle-in-transaction-timeout', 0, 2_147_483_647), supervisorDefaults.session.idleInTransactionTimeoutMs)
    .option('--connect-timeout <ms>', 'per connection attempt', integer('--connect-timeout', 100, 600_000), supervisorDefaults.session.connectTimeoutMs)
    .option('--connect-retries <n>', 'retries of a transient connect failure, with backoff (task connections and the first connection at start)', integer('--connect-retries', 0, 100), supervisorDefaults.session.connectRetries)
    .option('--keep-finished <ms>', 'delete finished tasks this long after they finished (0: keep forever)', integer('--keep-finished', 0, 2 ** 40), supervisorDefaults.keepFinishedMs)
    .option('--metrics-port <port>', 'serve Prometheus metrics on GET /metrics and health checks on GET /healthz and /readyz at this port (default: off)', integer('--metrics-port', 1, 65_535))
    .option('--metrics-host <host>', 'address the metrics server listens on (0.0.0.0: every interface, as in a container)', '127.0.0.1')
    .option('--no-local-socket', "task connections keep a loopback TCP URL's transport instead of the same server's Unix socket")
    .option('--pretty', 'human-readable, coloured log lines (default: when stdout is a terminal)')
    .option('--no-pretty', 'JSON log lines, even on a terminal');
  return addDatabaseOptions(command);
}

async function runStart(flags: StartFlags, command: Command): Promise<void> {
  const database = resolveDatabase(flags);
  // Empty, they would mean no task module (only the built-in tasks) and every interface (`::`), silently.
  for (const [value, flag] of [[flags.tasks, '--tasks'], [flags.metricsHost, '--metrics-host']] as const) {
    if (value !== undefined && value.trim() === '') throw new PreforkError('INVALID_OPTION', `${flag} must not be empty`, { exitCode: exitCodes.usage });
  }
  const tasksPath = flags.tasks ? resolve(flags.tasks) : undefined;
  if (tasksPath && !existsSync(tasksPath)) {
    throw new PreforkError('TASK_MODULE_NOT_FOUND', `task module not found: ${tasksPath}`, { exitCode: exitCodes.usage });
  }
  // Refused here too, as a missing file is: else every worker would fork and only then fail to import it
  // (a directory: "Directory import … is not supported"), exit 1 after the start-up.
  const tasksStat = tasksPath ? statSync(tasksPath) : undefined;
  if (tasksStat && !tasksStat.isFile()) {
    const what = tasksStat.isDirectory() ? 'a directory, not a file' : 'not a regular file';
    throw new PreforkError('TASK_MODULE_NOT_A_FILE', `task module is ${what}: ${tasksPath}`, { exitCode: exitCodes.usage });
  }
  // The supervisor (about 60 modules) is loaded by start alone, the other commands never need it; its loading
  // begins now and goes on beside the metrics port and the embedded server's start.
  const supervisorModule = import('../../primary/supervisor.js');
  supervisorModule.catch(() => {}); // awaited below
  const logFormat = resolveLogFormat(flags.pretty);
  const log = createLogger({ level: flags.logLevel, base: { role: 'primary' }, format: logFormat });
  // The metrics port first: a port in use fails before anything starts. /healthz says 503 until the supervisor runs.
  let supervisor: Supervisor | undefined;
  const metrics =
    flags.metricsPort === undefined
      ? undefined
      : await serveMetrics({
          host: flags.metricsHost,
          port: flags.metricsPort,
          health: () => ({ ok: supervisor?.phase === 'running', state: supervisor?.phase ?? 'starting', readiness: supervisor?.readiness() }),
          log,
        });
  // Without a database URL, the embedded PostgreSQL: started before the supervisor, stopped after it.
  // Set when the embedded server went away for good: the supervisor stops at once and start exits with it.
  let databaseLost: PreforkError | undefined;
  const onLost = (error: PreforkError) => {
    databaseLost ??= error;
    void supervisor?.forceStop();
  };
  const embedded = database.url ? undefined : await startEmbedded(database.embedded, log, { onLost }).catch(async (error: unknown) => {
    await metrics?.close();
    throw error;
  });
  try {
    const databaseUrl = database.url ?? embedded!.server.connectionString;
    // Task modules that read DATABASE_URL themselves reach the same server as ctx.db.
    if (embedded) process.env.DATABASE_URL = databaseUrl;
    const source = databaseSource(command, database.source);
    log.info(
      { event: 'database_selected', source, database: redactConnectionString(databaseUrl), dataDir: embedded?.server.dataDir },
      embedded ? `using the embedded PostgreSQL; its data lives in ${embedded.server.dataDir}` : `using the database from ${source}`,
    );
    const { Supervisor } = await supervisorModule;
    supervisor = new Supervisor(
      {
        ...supervisorDefaults,
        databaseUrl,
        schema: database.schema,
        workers: flags.workers ?? availableParallelism(),
        concurrency: flags.concurrency,
        tasksPath,
        logLevel: flags.logLevel,
        logFormat,
        shutdownTimeoutMs: flags.shutdownTimeout,
        defaultMaxAttempts: flags.maxAttempts,
        softTimeoutMs: flags.softTimeout,
        hardTimeoutMs: flags.hardTimeout,
        maxTasksPerWorker: flags.maxTasksPerWorker,
        maxMemoryPerWorkerMb: flags.maxMemoryPerWorker,
        maxDbConnections: flags.maxDbConnections,
        prefetch: flags.prefetch,
        queues: flags.queues,
        leaseMs: flags.lease,
        keepFinishedMs: flags.keepFinished,
        localSocket: flags.localSocket,
        session: {
          ...supervisorDefaults.session,
          statementTimeoutMs: flags.statementTimeout,
          lockTimeoutMs: flags.lockTimeout,
          idleInTransactionTimeoutMs: flags.idleInTransactionTimeout,
          connectTimeoutMs: flags.connectTimeout,
          connectRetries: flags.connectRetries,
        },
      },
      log,
    );
    metrics?.attach(supervisor, { databaseUrl, schema: database.schema });
    handleStopSignals(supervisor, log, () => {
      embedded?.abandon();
      process.exit(exitCodes.forced);
    });
    const stopped = new Promise<void>((done) => supervisor!.once('stopped', done));
    try {
      if (databaseLost) throw databaseLost;
      await supervisor.start();
    } catch (error) {
      if (databaseLost) throw databaseLost;
      // A stop asked for (SIGTERM, Ctrl-C, prefork stop) while workers were starting: what was asked, not a failure.
      if (error instanceof PreforkError && error.code === 'STOPPED_DURING_START') {
        log.info({ event: 'supervisor_stopped_during_start' }, `${error.message}: stopped as asked`);
        return;
      }
      // A PreforkError's stack is prefork's own code, and the message says it all (a worker's failure was logged
      // with its stack by the worker); its cause, if any, is logged with its own.
      const described = error instanceof PreforkError;
      log.fatal(
        described ? { event: 'supervisor_start_failed', code: error.code, ...(error.cause === undefined ? {} : { err: withoutDriverStack(error.cause) }) } : { event: 'supervisor_start_failed', err: error },
        (error as Error).message,
      );
      throw error;
    }
    await stopped;
    if (databaseLost) throw databaseLost;
  } finally {
    await metrics?.close();
    await embedded?.stop();
  }
}

// Loaded only when used, so that a plain `start` does not pay for them (primary module load is start-up time).

/** prom-client (with @opentelemetry/api) and node:http: about 90 modules, 40 ms. */
async function serveMetrics(...args: Parameters<typeof import('../../metrics/serve-metrics.js').serveMetrics>) {
  const { serveMetrics } = await import('../../metrics/serve-metrics.js');
  return serveMetrics(...args);
}

/** The embedded server: child processes, lock and state files. */
async function startEmbedded(...args: Parameters<typeof import('../embedded-server.js').startEmbeddedServer>) {
  const { startEmbeddedServer } = await import('../embedded-server.js');
  return startEmbeddedServer(...args);
}

/** For the log: --database-url, the environment variable (DATABASE_URL, PREFORK_DATABASE_URL) or the config file. */
function databaseSource(command: Command, fallback: string): string {
  const origin = originsOf(command).get('databaseUrl');
  if (!origin || origin.source === 'flag' || origin.source === 'default' || !origin.from) return fallback;
  return origin.source === 'env' ? origin.from : `config file ${origin.from}`;
}

/**
 * A cause that is the world's answer (the server's error, a connect refused, a host that does not resolve) is
 * logged without its stack: that is the driver's code, and says nothing the message does not.
 */
function withoutDriverStack(cause: unknown): unknown {
  const fields = cause as { severity?: unknown; syscall?: unknown; code?: unknown };
  if (!(cause instanceof Error) || (fields.severity === undefined && fields.syscall === undefined)) return cause;
  const bare = Object.assign(new Error(cause.message), fields.code === undefined ? {} : { code: fields.code });
  delete bare.stack;
  return bare;
}
