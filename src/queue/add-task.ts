import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { checkNewTask, storing } from './task-input.js';
import { PreforkError } from '../errors.js';

export interface AddTaskOptions {
  /** Named queue (default `default`). */
  queue?: string | undefined;
  /** Higher runs first (default 0). */
  priority?: number | undefined;
  /** Not before this time. */
  runAt?: Date | undefined;
  /** Not before this many milliseconds from now (ignored when runAt is given). */
  delayMs?: number | undefined;
  /** Attempts before the task is failed for good; default: the task's own option, else the supervisor's. */
  maxAttempts?: number | undefined;
  /** While a task with this key is queued or running in the same queue, adding another returns the first. */
  key?: string | undefined;
}

export interface AddedTask {
  id: string;
  /** True when `key` matched a task that was already queued or running: nothing was added. */
  deduplicated: boolean;
}

/**
 * The values of a task row, in this order: name, payload (JSON text), queue, priority, run_at (null: now),
 * max_attempts, key. Bad input throws (checkNewTask in task-input.ts).
 */
export type TaskValues = [name: string, payload: string, queue: string, priority: number, runAt: Date | null, maxAttempts: number | null, key: string | null];

export function taskValues(name: string, payload: unknown, options: AddTaskOptions): TaskValues {
  const json = checkNewTask(name, payload, options);
  const runAt = options.runAt ?? (options.delayMs ? new Date(Date.now() + options.delayMs) : null);
  return [name, json, options.queue ?? 'default', options.priority ?? 0, runAt, options.maxAttempts ?? null, options.key ?? null];
}

/**
 * Inserts one task. The insert trigger notifies the supervisors when the surrounding transaction commits, so
 * calling this on a client inside the application's transaction makes the task visible only on commit.
 */
export async function addTask(
  db: Queryable,
  schema: string,
  name: string,
  payload: unknown,
  options: AddTaskOptions = {},
): Promise<AddedTask> {
  const q = quoteIdent(schema);
  const values = taskValues(name, payload, options);
  const insert = `insert into ${q}.tasks (name, payload, queue, priority, run_at, max_attempts, key)
    values ($1, $2::jsonb, $3, $4, coalesce($5::timestamptz, now()), $6, $7)`;
  if (options.key === undefined) {
    const { rows } = await storing(db.query<{ id: string }>(`${insert} returning id`, values));
    return { id: rows[0]!.id, deduplicated: false };
  }
  const { rows } = await storing(db.query<{ id: string; deduplicated: boolean }>(
    `with added as (
       ${insert}
       on conflict (queue, key) where key is not null and state in ('queued', 'running') do nothing
       returning id
     )
     select id, false as deduplicated from added
     union all
     select id, true from ${q}.tasks
      where queue = $3 and key = $7 and state in ('queued', 'running') and not exists (select 1 from added)`,
    values,
  ));
  const row = rows[0];
  if (!row) throw new PreforkError('KEY_CONFLICT', `could not add or find the task with key "${options.key}"; try again`);
  return { id: row.id, deduplicated: row.deduplicated };
}
