import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';

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
 * queue at once, the lost attempt counted; a task out of attempts is failed with SUPERVISOR_LOST.
 * Returns how many were recovered.
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
        where id <> $1 and state in ('running', 'stopping')
          and (heartbeat_at <= now() - $2 * interval '1 millisecond' or id = any($3::uuid[]))
       returning id
     ),
     live as (
       select id from ${q}.supervisors
        where state in ('running', 'stopping') and heartbeat_at > now() - $2 * interval '1 millisecond'
          and id <> all($3::uuid[])
     ),
     orphans as (
       update ${q}.tasks t
          set state = case when t.attempts < coalesce(t.max_attempts, ($4::jsonb ->> t.name)::int, $5::int) then 'queued' else 'failed' end,
              finished_at = case when t.attempts < coalesce(t.max_attempts, ($4::jsonb ->> t.name)::int, $5::int) then null else now() end,
              run_at = now(), supervisor_id = null, error = $6::jsonb, errors = t.errors || jsonb_build_array($6::jsonb),
              history = t.history || jsonb_build_array(jsonb_build_object(
                'attempt', t.attempts, 'outcome', 'lost', 'workerPid', t.worker_pid, 'supervisorId', t.supervisor_id,
                'startedAt', t.started_at, 'finishedAt', now(), 'error', $6::jsonb))
        where t.state = 'running' and t.supervisor_id is distinct from $1
          and (t.supervisor_id is null or t.supervisor_id not in (select id from live))
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
