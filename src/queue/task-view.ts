import { publicError } from '../errors.js';
import type { TaskSummaryRow } from './task-row.js';

/** The public shape of a task: what `send --wait --json` prints and the client API returns. */
export function toTaskView(row: TaskSummaryRow) {
  return {
    id: row.id,
    task: row.name,
    queue: row.queue,
    status: row.state,
    result: row.state === 'succeeded' ? row.result : null,
    error: publicError(row.error),
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    workerPid: row.worker_pid,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    progress: row.progress ?? null,
  };
}

export type TaskView = ReturnType<typeof toTaskView>;
