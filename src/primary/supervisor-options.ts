import type { SessionSettings } from '../db/task-connection.js';

export interface SupervisorOptions {
  databaseUrl: string;
  /** PostgreSQL schema holding the queue (default `prefork`). */
  schema: string;
  workers: number;
  /** Tasks one worker process runs at once. */
  concurrency: number;
  /** Path of the task module, or undefined for the built-in tasks only. */
  tasksPath?: string | undefined;
  logLevel: string;
  /** Log format of the workers (the primary's logger is injected); default JSON. */
  logFormat?: 'json' | 'pretty' | undefined;
  /** How long a graceful stop waits for running tasks before it aborts them. */
  shutdownTimeoutMs: number;
  /** Between supervisor heartbeats (lease renewals and status snapshots). */
  heartbeatMs: number;
  /** A supervisor whose heartbeat is older than this is presumed dead and its tasks are reclaimed. */
  leaseMs: number;
  /** Slow safety poll for due tasks when no notification arrives. */
  pollIntervalMs: number;
  defaultMaxAttempts: number;
  /** A worker must be ready within this (task module import plus start-up hooks). */
  startupTimeoutMs: number;
  session: SessionSettings;
  /** Default soft time limit for tasks that set none (ms; undefined: none). */
  softTimeoutMs?: number | undefined;
  /** Default hard time limit for tasks that set none (ms; undefined: none). */
  hardTimeoutMs?: number | undefined;
  /** Replace a worker after it ran this many tasks (at a task boundary). */
  maxTasksPerWorker?: number | undefined;
  /** Claim only tasks of these named queues (default: every queue). */
  queues?: string[] | undefined;
  /** Finished tasks are deleted this long after they finished (default 7 days; 0 keeps them forever). */
  keepFinishedMs?: number | undefined;
  /** Claimed tasks buffered in the primary beyond the free slots (default: 2 × workers × concurrency; 0: none). */
  prefetch?: number | undefined;
  /** Task connections open at once across all workers; default: derived from the server's max_connections. */
  maxDbConnections?: number | undefined;
  /** Replace a worker whose resident memory passed this many MB (at a task boundary). */
  maxMemoryPerWorkerMb?: number | undefined;
  /**
   * Task connections reach a server named by a loopback TCP URL over its Unix socket, when that socket answers
   * as the same server (default true; see db/local-socket.ts).
   */
  localSocket?: boolean | undefined;
}

export const supervisorDefaults = {
  schema: 'prefork',
  concurrency: 1,
  logLevel: 'info',
  shutdownTimeoutMs: 30_000,
  heartbeatMs: 1_000,
  leaseMs: 15_000,
  pollIntervalMs: 10_000,
  defaultMaxAttempts: 3,
  startupTimeoutMs: 30_000,
  keepFinishedMs: 7 * 24 * 3_600_000,
  session: {
    statementTimeoutMs: 300_000,
    lockTimeoutMs: 60_000,
    idleInTransactionTimeoutMs: 60_000,
    connectTimeoutMs: 10_000,
    connectRetries: 4,
    connectRetryMaxMs: 15_000,
  },
} satisfies Partial<SupervisorOptions>;
