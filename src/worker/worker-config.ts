/** What the primary hands each worker, through one environment variable at fork. */
import type { SessionSettings } from '../db/task-connection.js';

export interface WorkerConfig {
  /** file: URL of the task module, or null for the built-in tasks only. */
  tasksUrl: string | null;
  databaseUrl: string;
  schema: string;
  /** Tasks run at once; more may be queued (they start in the order received). */
  concurrency: number;
  logLevel: string;
  /** The primary's log format (`--pretty`), so all processes' lines look alike; absent: JSON. */
  logFormat?: 'json' | 'pretty' | undefined;
  startupTimeoutMs: number;
  session: SessionSettings;
  heartbeatMs: number;
  /**
   * Whether connections need a slot of the supervisor's budget. When the budget is at least every task slot
   * (workers × concurrency), it cannot run out and asking would only cost IPC round trips. Null: the primary
   * does not know yet (it forks the first workers while it prepares the database); the worker asks
   * (`budget_query`) before its first connection.
   */
  budgetEnforced: boolean | null;
  /**
   * The supervisor that forked this worker. Read from the worker's initial environment (/proc/PID/environ) by a
   * later supervisor on this host, to find a worker left running by a dead one (same-host.ts).
   */
  supervisorId?: string | undefined;
}

export const workerConfigEnv = 'PREFORK_WORKER_CONFIG';

export function encodeWorkerConfig(config: WorkerConfig): string {
  return JSON.stringify(config);
}

/**
 * Reads the config and removes it from the environment: it holds the database URL, password included, which
 * task code has no need to read and a program a task starts (which inherits the environment) must not receive.
 */
export function takeWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const raw = env[workerConfigEnv];
  if (!raw) throw new Error(`${workerConfigEnv} is not set: this module is started by the prefork primary, not directly`);
  delete env[workerConfigEnv];
  return JSON.parse(raw) as WorkerConfig;
}
