import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { summaryColumns } from './read-tasks.js';
import type { TaskState, TaskSummaryRow } from './task-row.js';

export interface TaskListFilter {
  /** Only tasks in these states (default: any). */
  states?: readonly TaskState[] | undefined;
  /** Only tasks of this name. */
  name?: string | undefined;
  /** Only tasks of this queue. */
  queue?: string | undefined;
  /** Only tasks with an id below this one: the next page after a page that ended at it. */
  before?: string | undefined;
  /** At most this many (default 50). */
  limit?: number | undefined;
}

export const defaultListLimit = 50;

/** The newest tasks first (by id), as the filter selects them; `more` tells whether older ones match too. */
export async function listTasks(db: Queryable, schema: string, filter: TaskListFilter = {}): Promise<{ rows: TaskSummaryRow[]; more: boolean }> {
  const limit = filter.limit ?? defaultListLimit;
  const { rows } = await db.query<TaskSummaryRow>(
    `select ${summaryColumns(schema)}
       from ${quoteIdent(schema)}.tasks
      where ($1::text[] is null or state = any($1))
        and ($2::text is null or name = $2)
        and ($3::text is null or queue = $3)
        and ($4::bigint is null or id < $4)
      order by tasks.id desc
      limit $5`,
    [filter.states?.length ? filter.states : null, filter.name ?? null, filter.queue ?? null, filter.before ?? null, limit + 1],
  );
  return { rows: rows.slice(0, limit), more: rows.length > limit };
}
