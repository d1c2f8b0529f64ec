/**
 * Due tasks found without walking the scheduled ones. The claim index is (priority desc, run_at, id) over
 * queued rows, and `run_at <= now()` bounds a walk of it only within one priority: before PostgreSQL 18 (skip
 * scan) a btree walk cannot jump from one priority to the next, so a claim that found fewer due tasks than it
 * asked for, and the direct submission's "is a due task waiting?" check, read every queued row not yet due
 * (scheduled tasks, retries in their backoff) of the priorities they passed. Measured on PostgreSQL 15: 0.45 ms
 * per claim with no scheduled task, 0.56 ms with 20,000, 1.2 ms with 100,000; a direct submission 0.3 → 2 ms
 * with 25,000. Now 0.47 ms per claim with none and 0.52 ms with 100,000, a direct submission 0.33-0.37 ms with
 * 50,000.
 *
 * Both now go priority by priority (a loose index scan): the highest priority holding a queued row is the
 * index's first entry, each level's due rows are a bounded range of it, and the next lower level is one more
 * descent. A handful of index probes per claim whatever is scheduled, one more per priority level visited.
 *
 * claim_tasks() keeps its signature, order and pinned planner settings; its body is replaced whole.
 */
export default /* sql */ `
create or replace function claim_tasks(
  claimer uuid, task_names text[], max_count integer, max_attempts_by_name jsonb, fallback_max_attempts integer, only_queues text[]
) returns table (task_id bigint, task_name text, task_payload jsonb, attempt integer, attempts_allowed integer, task_priority integer, task_run_at timestamptz)
language plpgsql
set search_path from current
set enable_sort = off
set enable_bitmapscan = off
set enable_seqscan = off
as $$
declare
  level integer;
  wanted integer := max_count;
  got integer;
begin
  select priority into level from tasks where state = 'queued' order by priority desc, run_at, id limit 1;
  while level is not null and wanted > 0 loop
    return query
    with next as (
      select id from tasks
       where state = 'queued' and priority = level and run_at <= now() and name = any(task_names)
         and (only_queues is null or queue = any(only_queues))
       order by priority desc, run_at, id
       limit wanted
       for update skip locked
    )
    update tasks t
       set state = 'running', attempts = t.attempts + 1, started_at = now(), finished_at = null,
           supervisor_id = claimer, worker_pid = null
      from next
     where t.id = next.id
    returning t.id, t.name, t.payload, t.attempts,
              coalesce(t.max_attempts, (max_attempts_by_name ->> t.name)::int, fallback_max_attempts),
              t.priority, t.run_at;
    get diagnostics got = row_count;
    wanted := wanted - got;
    exit when wanted = 0;
    select priority into level from tasks where state = 'queued' and priority < level order by priority desc, run_at, id limit 1;
  end loop;
end
$$;

-- Whether a queued task of at least this priority is due: a direct submission of that priority must not
-- overtake it.
create function due_task_waiting(min_priority integer) returns boolean
language plpgsql stable
set search_path from current
set enable_sort = off
set enable_bitmapscan = off
set enable_seqscan = off
as $$
declare
  level integer;
begin
  select priority into level from tasks where state = 'queued' and priority >= min_priority order by priority desc, run_at, id limit 1;
  while level is not null loop
    if exists (select 1 from tasks where state = 'queued' and priority = level and run_at <= now()) then
      return true;
    end if;
    select priority into level from tasks where state = 'queued' and priority >= min_priority and priority < level
     order by priority desc, run_at, id limit 1;
  end loop;
  return false;
end
$$;
`;
