/**
 * Claims as a function with its planner settings pinned. The claim must walk tasks_claim_idx in order and
 * stop at the limit; with statistics taken before a bulk insert (a new table, or autovacuum not yet round),
 * the planner instead reads every queued row, sorts them and locks the first few: milliseconds per claim that
 * grow with the queue. Sorting and bitmap/sequential scans are therefore disabled for this statement only.
 */
export default /* sql */ `
create function claim_tasks(
  claimer uuid, task_names text[], max_count integer, max_attempts_by_name jsonb, fallback_max_attempts integer, only_queues text[]
) returns table (task_id bigint, task_name text, task_payload jsonb, attempt integer, attempts_allowed integer, task_priority integer, task_run_at timestamptz)
language sql
set search_path from current
set enable_sort = off
set enable_bitmapscan = off
set enable_seqscan = off
as $$
  with next as (
    select id from tasks
     where state = 'queued' and run_at <= now() and name = any(task_names)
       and (only_queues is null or queue = any(only_queues))
     order by priority desc, run_at, id
     limit max_count
     for update skip locked
  )
  update tasks t
     set state = 'running', attempts = t.attempts + 1, started_at = now(), finished_at = null,
         supervisor_id = claimer, worker_pid = null
    from next
   where t.id = next.id
  returning t.id, t.name, t.payload, t.attempts,
            coalesce(t.max_attempts, (max_attempts_by_name ->> t.name)::int, fallback_max_attempts),
            t.priority, t.run_at
$$;
`;
