import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { PreforkError } from '../errors.js';
import { taskValues, type AddedTask, type AddTaskOptions } from './add-task.js';
import { storing } from './task-input.js';

/**
 * Inserts a queued task under the sender's `submission` UUID, at most once: when an earlier attempt of the same
 * submission already made the task (a supervisor took it over its socket, committed, and died before it could
 * answer), that task's id is returned instead. With a `key` that matches a queued or running task, that task.
 */
export async function addSubmitted(
  db: Queryable,
  schema: string,
  submission: string,
  name: string,
  payload: unknown,
  options: AddTaskOptions = {},
): Promise<AddedTask> {
  const q = quoteIdent(schema);
  const task = taskValues(name, payload, options);
  const [, , queue] = task;
  const values = [...task, submission];
  for (let round = 0; round < 3; round++) {
    try {
      const { rows } = await storing(db.query<{ id: string }>(
        `insert into ${q}.tasks (name, payload, queue, priority, run_at, max_attempts, key, submission)
         values ($1, $2::jsonb, $3, $4, coalesce($5::timestamptz, now()), $6, $7, $8::uuid)
         on conflict (submission) where submission is not null do nothing
         returning id::text`,
        values,
      ));
      if (rows[0]) return { id: rows[0].id, deduplicated: false };
    } catch (error) {
      const e = error as { code?: string; constraint?: string };
      if (e.code !== '23505' || e.constraint !== 'tasks_key_idx') throw error;
      const { rows } = await db.query<{ id: string }>(
        `select id::text from ${q}.tasks where queue = $1 and key = $2 and state in ('queued', 'running')`,
        [queue, options.key],
      );
      if (rows[0]) return { id: rows[0].id, deduplicated: true };
      continue;
    }
    // The submission exists: read it in a statement of its own, which sees what committed meanwhile.
    const { rows } = await db.query<{ id: string }>(`select id::text from ${q}.tasks where submission = $1`, [submission]);
    if (rows[0]) return { id: rows[0].id, deduplicated: false };
  }
  throw new PreforkError('SUBMIT_CONFLICT', `could not add or find the task of submission ${submission}; try again`);
}
