import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { maxAttemptsOf } from './known-tasks.js';
import { taskStates, type TaskRow, type TaskState, type TaskSummaryRow } from './task-row.js';

/**
 * One task with its full history. The stored history holds the attempts that were followed by another (and
 * those a supervisor lost); the attempt that ended the task is told by the row's own columns and added here.
 */
export async function getTask(db: Queryable, schema: string, id: string): Promise<TaskRow | null> {
  const { rows } = await db.query<TaskRow>(
    `select id, name, queue, payload, state, priority, run_at, attempts, ${maxAttemptsOf(schema, 'tasks')} as max_attempts, key, result,
            error, errors, supervisor_id, worker_pid, created_at, started_at, finished_at, progress,
            ${historyWithFinalAttempt('tasks')} as history
       from ${quoteIdent(schema)}.tasks where id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

/** A task as its public view shows it (no payload, errors or history): what the client's reads and waits return. */
export async function getTaskSummary(db: Queryable, schema: string, id: string): Promise<TaskSummaryRow | null> {
  const { rows } = await db.query<TaskSummaryRow>(
    `select ${summaryColumns(schema)} from ${quoteIdent(schema)}.tasks where id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

/** The columns of a TaskSummaryRow, from `tasks`. */
export function summaryColumns(schema: string): string {
  return `tasks.id::text as id, name, queue, state, priority, run_at, attempts, ${maxAttemptsOf(schema, 'tasks')} as max_attempts, key, result,
            error, supervisor_id, worker_pid, created_at, started_at, finished_at, progress`;
}

/** A task's name and state, or null when there is no such task. */
export async function getTaskNameAndState(db: Queryable, schema: string, id: string): Promise<Pick<TaskRow, 'name' | 'state'> | null> {
  const { rows } = await db.query<Pick<TaskRow, 'name' | 'state'>>(`select name, state from ${quoteIdent(schema)}.tasks where id = $1`, [id]);
  return rows[0] ?? null;
}

/**
 * SQL for a task row's whole history: the stored one, plus the attempt that ended the task when it is final (that
 * attempt is kept in the row's own columns, not in `history`). `t`: the row's alias.
 */
export function historyWithFinalAttempt(t: string): string {
  return `case when ${t}.state in ('succeeded', 'failed', 'timed_out', 'cancelled') and ${t}.attempts > jsonb_array_length(${t}.history)
                 then ${t}.history || jsonb_build_array(jsonb_build_object(
                   'attempt', ${t}.attempts, 'outcome', ${t}.state, 'workerPid', ${t}.worker_pid, 'supervisorId', ${t}.supervisor_id,
                   'startedAt', ${t}.started_at, 'finishedAt', ${t}.finished_at, 'error', case when ${t}.state = 'succeeded' then null else ${t}.error end))
                 else ${t}.history end`;
}

export async function countTasksByState(db: Queryable, schema: string): Promise<Record<TaskState, number>> {
  const { rows } = await db.query<{ state: TaskState; n: number }>(
    `select state, count(*)::int as n from ${quoteIdent(schema)}.tasks group by state`,
  );
  const counts = Object.fromEntries(taskStates.map((s) => [s, 0])) as Record<TaskState, number>;
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}
