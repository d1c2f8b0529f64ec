import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { taskStates, type TaskRow, type TaskState } from './task-row.js';

export async function getTask(db: Queryable, schema: string, id: string): Promise<TaskRow | null> {
  const { rows } = await db.query<TaskRow>(`select * from ${quoteIdent(schema)}.tasks where id = $1`, [id]);
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
