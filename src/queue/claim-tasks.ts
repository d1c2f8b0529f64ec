import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';

export interface ClaimedTask {
  id: string;
  name: string;
  payload: unknown;
  /** This attempt's number, from 1. */
  attempt: number;
  maxAttempts: number;
}

export interface ClaimRequest {
  supervisorId: string;
  /** Only tasks with these names are claimed: a supervisor never takes work it cannot run. */
  names: readonly string[];
  limit: number;
  /** Per task name, the max attempts its definition gives; used when the row has none. */
  maxAttemptsByName: Record<string, number>;
  defaultMaxAttempts: number;
  /** Only these named queues; null: all. */
  queues: readonly string[] | null;
}

/** Moves up to `limit` due tasks to `running` under this supervisor, skipping rows others hold. */
export async function claimTasks(db: Queryable, schema: string, request: ClaimRequest): Promise<ClaimedTask[]> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{
    id: string;
    name: string;
    payload: unknown;
    attempts: number;
    max_attempts: number;
    priority: number;
    run_at: Date;
  }>(
    `with next as (
       select id from ${q}.tasks
        where state = 'queued' and run_at <= now() and name = any($1::text[])
          and ($6::text[] is null or queue = any($6::text[]))
        order by priority desc, run_at, id
        limit $2
        for update skip locked
     )
     update ${q}.tasks t
        set state = 'running', attempts = t.attempts + 1, started_at = now(), finished_at = null,
            supervisor_id = $3, worker_pid = null
       from next
      where t.id = next.id
     returning t.id, t.name, t.payload, t.attempts, t.priority, t.run_at,
               coalesce(t.max_attempts, ($4::jsonb ->> t.name)::int, $5::int) as max_attempts`,
    [request.names, request.limit, request.supervisorId, JSON.stringify(request.maxAttemptsByName), request.defaultMaxAttempts, request.queues],
  );
  rows.sort((a, b) => b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime() || compareIds(a.id, b.id));
  return rows.map((r) => ({ id: r.id, name: r.name, payload: r.payload, attempt: r.attempts, maxAttempts: r.max_attempts }));
}

function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** When the next queued task of these names becomes due, or null when none is waiting. */
export async function nextRunAt(db: Queryable, schema: string, names: readonly string[], queues: readonly string[] | null): Promise<Date | null> {
  const { rows } = await db.query<{ run_at: Date | null }>(
    `select min(run_at) as run_at from ${quoteIdent(schema)}.tasks
      where state = 'queued' and name = any($1::text[]) and ($2::text[] is null or queue = any($2::text[]))`,
    [names, queues],
  );
  return rows[0]?.run_at ?? null;
}
