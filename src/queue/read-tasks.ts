import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { taskStates, type TaskRow, type TaskState } from './task-row.js';

/**
 * One task with its full history. The stored history holds the attempts that were followed by another (and
 * those a supervisor lost); the attempt that ended the task is told by the row's own columns and added here.
 */
export async function getTask(db: Queryable, schema: string, id: string): Promise<TaskRow | null> {
  const { rows } = await db.query<TaskRow>(
    `select id, name, queue, payload, state, priority, run_at, attempts, max_attempts, key, result, error, errors,
            supervisor_id, worker_pid, created_at, started_at, finished_at,
            case when state in ('succeeded', 'failed', 'timed_out', 'cancelled') and attempts > jsonb_array_length(history)
                 then history || jsonb_build_array(jsonb_build_object(
                   'attempt', attempts, 'outcome', state, 'workerPid', worker_pid, 'supervisorId', supervisor_id,
                   'startedAt', started_at, 'finishedAt', finished_at, 'error', case when state = 'succeeded' then null else error end))
                 else history end as history
       from ${quoteIdent(schema)}.tasks where id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

export async function countTasksByState(db: Queryable, schema: string): Promise<Record<TaskState, number>> {
  const { rows } = await db.query<{ state: TaskState; n: number }>(
    `select state, count(*)::int as n from ${quoteIdent(schema)}.tasks group by state`,
  );
  const counts = Object.fromEntries(taskStates.map((s) => [s, 0])) as Record<TaskState, number>;
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}
