import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { redactConnectionString } from '../../db/connection-string.js';
import { PreforkError } from '../../errors.js';
import { createLogger } from '../../logger.js';
import { Supervisor } from '../../primary/supervisor.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { handleStopSignals } from '../../signals.js';
import { resolveDatabase, type DatabaseFlags } from '../database.js';
import { startEmbeddedServer } from '../embedded-server.js';
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
  statementTimeout: number;
  lockTimeout: number;
  idleInTransactionTimeout: number;
  connectTimeout: number;
  connectRetries: number;
}

export function startCommand(): Command {
  const command = new Command('start')
    .description('run a supervisor in the foreground: a primary process that forks workers and feeds them tasks')
    .option('-w, --workers <n>', 'worker processes (default: available parallelism)', integer('--workers', 1, 1024))
    .option('-c, --concurrency <n>', 'tasks one worker runs at once', integer('--concurrency', 1, 1000), supervisorDefaults.concurrency)
    .option('-t, --tasks <path>', 'ES module whose default export maps task names to handlers')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', logLevel, supervisorDefaults.logLevel)
    .option('--shutdown-timeout <ms>', 'on stop, how long running tasks may take before they are aborted', integer('--shutdown-timeout', 0, 86_400_000), supervisorDefaults.shutdownTimeoutMs)
    .option('--max-attempts <n>', 'attempts per task when neither the task nor the send says', integer('--max-attempts', 1, 1000), supervisorDefaults.defaultMaxAttempts)
    .option('--soft-timeout <ms>', "default soft time limit: the task's signal aborts", integer('--soft-timeout', 1, 2_147_483_647))
    .option('--hard-timeout <ms>', 'default hard time limit: query cancelled, backend terminated, worker killed and replaced', integer('--hard-timeout', 1, 2_147_483_647))
    .option('--max-tasks-per-worker <n>', 'replace a worker after it ran this many tasks', integer('--max-tasks-per-worker', 1, 1_000_000_000))
    .option('--max-memory-per-worker <mb>', 'replace a worker whose resident memory passed this many MB', integer('--max-memory-per-worker', 16, 1_000_000))
    .option('--max-db-connections <n>', "task connections open at once across all workers (default: from the server's max_connections)", integer('--max-db-connections', 1, 100_000))
    .option('--prefetch <n>', 'tasks claimed ahead of free slots (default: 2 × workers × concurrency)', integer('--prefetch', 0, 100_000))
    .option('--queues <names>', 'claim only from these named queues (comma-separated; default: all)', queueList)
    .option('--lease <ms>', "a supervisor silent this long is presumed dead and its tasks are reclaimed", integer('--lease', 1_000, 86_400_000), supervisorDefaults.leaseMs)
    .option('--statement-timeout <ms>', "task connections' statement_timeout (0: none)", integer('--statement-timeout', 0, 2_147_483_647), supervisorDefaults.session.statementTimeoutMs)
    .option('--lock-timeout <ms>', "task connections' lock_timeout (0: none)", integer('--lock-timeout', 0, 2_147_483_647), supervisorDefaults.session.lockTimeoutMs)
    .option('--idle-in-transaction-timeout <ms>', "task connections' idle_in_transaction_session_timeout (0: none)", integer('--idle-in-transaction-timeout', 0, 2_147_483_647), supervisorDefaults.session.idleInTransactionTimeoutMs)
    .option('--connect-timeout <ms>', 'per connection attempt', integer('--connect-timeout', 100, 600_000), supervisorDefaults.session.connectTimeoutMs)
    .option('--connect-retries <n>', 'retries of a transient connect failure, with backoff', integer('--connect-retries', 0, 100), supervisorDefaults.session.connectRetries)
    .option('--keep-finished <ms>', 'delete finished tasks this long after they finished (0: keep forever)', integer('--keep-finished', 0, 2 ** 40), supervisorDefaults.keepFinishedMs);
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Without --database-url or DATABASE_URL, an embedded PostgreSQL runs with the supervisor; its data stays in
--data-dir (default ./.prefork/pgdata) between runs, and send, status and stop run here find it.

Examples:
  $ prefork start --workers 4 --tasks ./tasks.js
  $ DATABASE_URL=postgres://app@db/app prefork start -w 2 -c 4 --tasks ./dist/tasks.js`,
  );
  return command.action(async (flags: StartFlags) => {
    const database = resolveDatabase(flags);
    const tasksPath = flags.tasks ? resolve(flags.tasks) : undefined;
    if (tasksPath && !existsSync(tasksPath)) {
      throw new PreforkError('TASK_MODULE_NOT_FOUND', `task module not found: ${tasksPath}`, { exitCode: exitCodes.usage });
    }
    const log = createLogger({ level: flags.logLevel, base: { role: 'primary' } });
    // Without a database URL, the embedded PostgreSQL: started before the supervisor, stopped after it.
    const embedded = database.url ? undefined : await startEmbeddedServer(database.embedded, log);
    try {
      const databaseUrl = database.url ?? embedded!.server.connectionString;
      // Task modules that read DATABASE_URL themselves reach the same server as ctx.db.
      if (embedded) process.env.DATABASE_URL = databaseUrl;
      log.info(
        { event: 'database_selected', source: database.source, database: redactConnectionString(databaseUrl), dataDir: embedded?.server.dataDir },
        embedded ? `using the embedded PostgreSQL; its data lives in ${embedded.server.dataDir}` : `using the database from ${database.source}`,
      );
      const supervisor = new Supervisor(
        {
          ...supervisorDefaults,
          databaseUrl,
          schema: database.schema,
          workers: flags.workers ?? availableParallelism(),
          concurrency: flags.concurrency,
          tasksPath,
          logLevel: flags.logLevel,
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
      handleStopSignals(supervisor, log, () => {
        embedded?.abandon();
        process.exit(exitCodes.forced);
      });
      const stopped = new Promise<void>((done) => supervisor.once('stopped', done));
      try {
        await supervisor.start();
      } catch (error) {
        log.fatal({ event: 'supervisor_start_failed', err: error }, (error as Error).message);
        throw error;
      }
      await stopped;
    } finally {
      await embedded?.stop();
    }
  });
}
