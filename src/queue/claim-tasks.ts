import type { PreparingQueryable, Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import type { RateLimit } from '../task.js';

export interface ClaimedTask {
  id: string;
  name: string;
  payload: unknown;
  /** This attempt's number, from 1. */
  attempt: number;
  maxAttempts: number;
  /**
   * When this supervisor learned of the claim (Date.now()). The row's started_at is the claim's time; an
   * attempt that starts well after it (claimed ahead) has its start recorded with its outcome.
   */
  claimedAt?: number;
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
export async function claimTasks(db: PreparingQueryable, schema: string, request: ClaimRequest): Promise<ClaimedTask[]> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ id: string; name: string; payload: unknown; attempts: number; max_attempts: number }>({
    // Named: parsed and planned once per connection. Ordered here: the update returns rows in no set order.
    name: `prefork_claim_${schema}`,
    // The names paused as this statement reads them are left out too: a pause committed before the claim holds
    // even when this supervisor has not heard of it yet (its control NOTIFY still on the way).
    text: `select task_id as id, task_name as name, task_payload as payload, attempt as attempts, attempts_allowed as max_attempts
       from ${q}.claim_tasks($3::uuid, array(select n from unnest($1::text[]) n where not exists (select 1 from ${q}.paused_tasks p where p.name = n)),
                             $2::int, $4::jsonb, $5::int, $6::text[])
      order by task_priority desc, task_run_at, task_id`,
    values: [request.names, request.limit, request.supervisorId, JSON.stringify(request.maxAttemptsByName), request.defaultMaxAttempts, request.queues],
  });
  const claimedAt = Date.now();
  return rows.map((r) => ({ id: r.id, name: r.name, payload: r.payload, attempt: r.attempts, maxAttempts: r.max_attempts, claimedAt }));
}

/** A task name's limits across all supervisors (defineTask's `maxRunning` and `rateLimit`). */
export interface TaskLimits {
  /** At most this many attempts running at once. */
  maxRunning?: number | undefined;
  /** At most `count` attempts claimed in any `intervalMs`. */
  rateLimit?: RateLimit | undefined;
}

export interface LimitedClaim {
  tasks: ClaimedTask[];
  /** A limit stopped the claim, or would stop the next: nothing more of the name may be claimed for now. */
  blocked: boolean;
  /** When the rate's window frees (null: blocked by the running limit until one of the name's tasks ends). */
  blockedUntil: Date | null;
}

/**
 * Claims up to `limit` due tasks of one limited name, within its limits (migration 000010): claims of the same
 * name wait for each other across supervisors, those of other names do not. None while the name is paused, as
 * this statement reads it (see claimTasks).
 */
export async function claimLimitedTasks(
  db: PreparingQueryable,
  schema: string,
  request: Omit<ClaimRequest, 'names'> & { name: string; limits: TaskLimits },
): Promise<LimitedClaim> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ id: string | null; name: string; payload: unknown; attempts: number; max_attempts: number; blocked_until: Date | null }>({
    name: `prefork_claim_limited_${schema}`,
    text: `select task_id as id, task_name as name, task_payload as payload, attempt as attempts, attempts_allowed as max_attempts, blocked_until
       from ${q}.claim_limited_tasks($1::uuid, $2::text,
                                     case when exists (select 1 from ${q}.paused_tasks p where p.name = $2::text) then 0 else $3::int end,
                                     $4::int, $5::int, $6::float8, $7::jsonb, $8::int, $9::text[])
      order by task_priority desc, task_run_at, task_id`,
    values: [
      request.supervisorId,
      request.name,
      request.limit,
      request.limits.maxRunning ?? null,
      request.limits.rateLimit?.count ?? null,
      request.limits.rateLimit?.intervalMs ?? null,
      JSON.stringify(request.maxAttemptsByName),
      request.defaultMaxAttempts,
      request.queues,
    ],
  });
  const tasks: ClaimedTask[] = [];
  let blocked = false;
  let blockedUntil: Date | null = null;
  for (const r of rows) {
    if (r.id !== null) tasks.push({ id: r.id, name: r.name, payload: r.payload, attempt: r.attempts, maxAttempts: r.max_attempts, claimedAt: Date.now() });
    else [blocked, blockedUntil] = [true, r.blocked_until];
  }
  return { tasks, blocked, blockedUntil };
}

/** When the next queued task of these names becomes due, or null when none is waiting. */
export async function nextRunAt(db: Queryable, schema: string, names: readonly string[], queues: readonly string[] | null): Promise<Date | null> {
  const { rows } = await db.query<{ run_at: Date | null }>(`select ${quoteIdent(schema)}.next_run_at($1::text[], $2::text[]) as run_at`, [names, queues]);
  return rows[0]?.run_at ?? null;
}
