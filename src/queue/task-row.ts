import type { SerializedError } from '../errors.js';

export const taskStates = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'] as const;
export type TaskState = (typeof taskStates)[number];

/** States a task never leaves. */
export const finalStates: ReadonlySet<TaskState> = new Set(['succeeded', 'failed', 'timed_out', 'cancelled']);

export interface TaskRow {
  id: string;
  name: string;
  queue: string;
  payload: unknown;
  state: TaskState;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number | null;
  key: string | null;
  result: unknown;
  error: SerializedError | null;
  errors: SerializedError[];
  history: AttemptRecord[];
  supervisor_id: string | null;
  worker_pid: number | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  /** What the task last reported with ctx.progress (in any attempt), or null. */
  progress: unknown;
}

/**
 * A task without what its public view (toTaskView) leaves out: the payload, the errors and the history, which
 * can be large (a payload up to jsonb's 256 MB) and which a wait re-reads every second.
 */
export type TaskSummaryRow = Omit<TaskRow, 'payload' | 'errors' | 'history'>;

/** One attempt of a task, as recorded when it ended. */
export interface AttemptRecord {
  attempt: number;
  outcome: 'succeeded' | 'retried' | 'failed' | 'timed_out' | 'cancelled' | 'lost';
  workerPid: number | null;
  supervisorId: string | null;
  startedAt: string | null;
  finishedAt: string;
  error: SerializedError | null;
}
