/** How a batch of tasks ended: for `send --file --wait`, which follows thousands of ids at once. */
import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import type { TaskState } from './task-row.js';

/** Of `ids`, those that reached a final state (with it), and those no longer in the table (state `null`). */
export async function settledAmong(db: Queryable, schema: string, ids: readonly string[]): Promise<{ id: string; state: TaskState | null }[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string; state: TaskState | null }>(
    `select p.id::text as id, t.state
       from unnest($1::bigint[]) as p(id)
       left join ${quoteIdent(schema)}.tasks t on t.id = p.id
      where t.id is null or t.state not in ('queued', 'running')`,
    [ids],
  );
  return rows;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

/**
 * Percentiles, in milliseconds, over the finished tasks among `ids`: `run` from the start to the end of the
 * last attempt (started_at → finished_at), `total` from the insert to the end (created_at → finished_at).
 */
export async function durationPercentiles(db: Queryable, schema: string, ids: readonly string[]): Promise<{ run: Percentiles | null; total: Percentiles | null }> {
  if (ids.length === 0) return { run: null, total: null };
  const { rows } = await db.query<{ run: number[] | null; total: number[] | null }>(
    `select percentile_cont(array[0.5, 0.99]) within group (order by (extract(epoch from finished_at - started_at) * 1000)::float8) as run,
            percentile_cont(array[0.5, 0.99]) within group (order by (extract(epoch from finished_at - created_at) * 1000)::float8) as total
       from ${quoteIdent(schema)}.tasks
      where id = any($1::bigint[]) and finished_at is not null`,
    [ids],
  );
  const pick = (v: number[] | null | undefined): Percentiles | null => (v && v[0] !== null && v[0] !== undefined ? { p50: round(v[0]), p99: round(v[1]!) } : null);
  return { run: pick(rows[0]?.run), total: pick(rows[0]?.total) };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
