import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';
import { liveStatesSql } from './supervisors.js';

export interface RecoverRequest {
  /** The supervisor doing the recovery: its own tasks are never touched. */
  supervisorId: string;
  leaseMs: number;
  /** Supervisors known to be dead whatever their lease says (same host, pid gone). */
  deadSupervisorIds: readonly string[];
  maxAttemptsByName: Record<string, number>;
  defaultMaxAttempts: number;
}

/**
 * Tasks left `running` by a supervisor that is gone (stopped, lease expired, or known dead) go back to the
 * queue at once. A task its last published snapshot shows started on a worker lost an attempt: it is counted
 * (with that worker's pid in the history), and a task out of attempts is failed with SUPERVISOR_LOST. A task
 * it had claimed before that snapshot and not started (in its buffer, or queued behind another on a worker)
 * goes back uncounted, as a graceful stop gives it back. Not knowing, a task claimed after the snapshot, or
 * held by a supervisor that published none, counts.
 * Returns how many were recovered (`requeued` includes those given back uncounted).
 */
export async function recoverOrphans(db: Queryable, schema: string, r: RecoverRequest): Promise<{ requeued: number; failed: number }> {
  const q = quoteIdent(schema);
  const error = {
    name: 'SupervisorLost',
    code: 'SUPERVISOR_LOST',
    message: 'the supervisor running this task stopped or lost its lease before the task finished',
  };
  const { rows } = await db.query<{ requeued: number; failed: number }>(
    `with lost as (
       update ${q}.supervisors set state = 'lost', stopped_at = now()
        where id <> $1 and state in (${liveStatesSql})
          and (heartbeat_at <= now() - $2 * interval '1 millisecond' or id = any($3::uuid[]))
       returning id
     ),
     live as (
       select id from ${q}.supervisors
        where state in (${liveStatesSql}) and heartbeat_at > now() - $2 * interval '1 millisecond'
          and id <> all($3::uuid[])
     ),
     candidates as (
       select t.id,
              -- Started as far as the last snapshot tells; and, not knowing, every task claimed after it was
              -- published, or of a supervisor that published none.
              (s.snapshot is null or jsonb_typeof(s.snapshot -> 'workers') is distinct from 'array' or ran.pid is not null
               or t.started_at is null or t.started_at >= s.heartbeat_at) as started,
              ran.pid as worker_pid,
              t.attempts >= coalesce(t.max_attempts, ($4::jsonb ->> t.name)::int, $5::int) as exhausted
         from ${q}.tasks t
         left join ${q}.supervisors s on s.id = t.supervisor_id
         left join lateral (
           select (w ->> 'pid')::int as pid
             from jsonb_array_elements(case when jsonb_typeof(s.snapshot -> 'workers') = 'array' then s.snapshot -> 'workers' else '[]'::jsonb end) w,
                  jsonb_array_elements(case when jsonb_typeof(w -> 'current') = 'array' then w -> 'current' else '[]'::jsonb end) c
            where c ->> 'taskId' = t.id::text
            limit 1
         ) ran on true
        where t.state = 'running' and t.supervisor_id is distinct from $1
          and (t.supervisor_id is null or t.supervisor_id not in (select id from live))
     ),
     orphans as (
       update ${q}.tasks t
          set state = case when c.started and c.exhausted then 'failed' else 'queued' end,
              finished_at = case when c.started and c.exhausted then now() end,
              attempts = case when c.started then t.attempts else greatest(t.attempts - 1, 0) end,
              run_at = now(), supervisor_id = null,
              started_at = case when c.started then t.started_at end,
              error = case when c.started then $6::jsonb else t.error end,
              errors = case when c.started then t.errors || jsonb_build_array($6::jsonb) else t.errors end,
              history = case when c.started then t.history || jsonb_build_array(jsonb_build_object(
                'attempt', t.attempts, 'outcome', 'lost', 'workerPid', coalesce(t.worker_pid, c.worker_pid), 'supervisorId', t.supervisor_id,
                'startedAt', t.started_at, 'finishedAt', now(), 'error', $6::jsonb)) else t.history end
         from candidates c
        where t.id = c.id and t.state = 'running'
       returning t.id, t.state
     ),
     woken as (select pg_notify($7, '') from (select 1 from orphans where state = 'queued' limit 1) s),
     done as (select pg_notify($8, string_agg(id::text, ',')) from orphans where state = 'failed' having count(*) > 0)
     select (select count(*) from orphans where state = 'queued')::int as requeued,
            (select count(*) from orphans where state = 'failed')::int as failed,
            (select count(*) from lost) + (select count(*) from woken) + (select count(*) from done) as touched`,
    [r.supervisorId, r.leaseMs, r.deadSupervisorIds, JSON.stringify(r.maxAttemptsByName), r.defaultMaxAttempts, JSON.stringify(error), channelsFor(schema).wake, channelsFor(schema).done],
  );
  return { requeued: rows[0]?.requeued ?? 0, failed: rows[0]?.failed ?? 0 };
}
