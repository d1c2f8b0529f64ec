/**
 * Limits per task name, across every supervisor on the database: at most `max_running` attempts running at once,
 * and at most `rate_count` attempts claimed in any `rate_interval_ms` (a sliding window, not a bucket: no burst of
 * twice the count across a window's edge).
 *
 * Tasks of a limited name are claimed by claim_limited_tasks(), one name per call, never by claim_tasks(). The
 * call first locks the name's row in task_limits, so the claims of one name queue up across supervisors while
 * the claims of other names never wait. The row keeps the claim times of the latest window (oldest first, at
 * most the count); a claim is allowed while fewer than the count fall within the interval before it.
 *
 * The limits themselves come with each call, from the task's definition: the database keeps only the state.
 *
 * Returns the claimed tasks, and one more row with a null task_id when a limit stopped the claim (or would stop the
 * next): its blocked_until says when the rate's window frees, or is null when the running limit is reached (the
 * next claim waits for one of the name's tasks to end).
 */
export default /* sql */ `
create table task_limits (
  name text primary key,
  starts timestamptz[] not null default '{}'
);

create function claim_limited_tasks(
  claimer uuid, limited_name text, max_count integer, max_running integer, rate_count integer, rate_interval_ms float8,
  max_attempts_by_name jsonb, fallback_max_attempts integer, only_queues text[]
) returns table (task_id bigint, task_name text, task_payload jsonb, attempt integer, attempts_allowed integer,
                 task_priority integer, task_run_at timestamptz, blocked_until timestamptz)
language plpgsql
set search_path from current
as $$
declare
  claimed_at timestamptz := now();
  window_length interval := rate_interval_ms * interval '1 millisecond';
  recent timestamptz[];
  wanted integer := max_count;
  total integer := 0;
  running integer := 0;
begin
  insert into task_limits (name) values (limited_name) on conflict (name) do nothing;
  select starts into recent from task_limits where name = limited_name for update;
  if max_running is not null then
    running := (select count(*) from tasks where state = 'running' and name = limited_name);
    wanted := least(wanted, max_running - running);
  end if;
  if rate_count is not null then
    recent := array(select s from unnest(recent) s where s > claimed_at - window_length order by s);
    wanted := least(wanted, rate_count - cardinality(recent));
  end if;

  if wanted > 0 then
    -- The claim itself is claim_tasks()'s (000007), for this one name.
    return query select c.*, null::timestamptz
      from claim_tasks(claimer, array[limited_name], wanted, max_attempts_by_name, fallback_max_attempts, only_queues) c;
    get diagnostics total = row_count;
  end if;

  if rate_count is not null and total > 0 then
    recent := recent || array_fill(claimed_at, array[total]);
    recent := recent[greatest(1, cardinality(recent) - rate_count + 1):cardinality(recent)];
    update task_limits set starts = recent where name = limited_name;
  end if;
  -- A limit, not the count asked for, stopped the claim: say until when (the rate), or until a task of the name
  -- ends (null: the running limit).
  if rate_count is not null and cardinality(recent) >= rate_count then
    return query select null::bigint, limited_name, null::jsonb, null::integer, null::integer, null::integer,
                        null::timestamptz, recent[cardinality(recent) - rate_count + 1] + window_length;
  elsif max_running is not null and running + total >= max_running then
    return query select null::bigint, limited_name, null::jsonb, null::integer, null::integer, null::integer,
                        null::timestamptz, null::timestamptz;
  end if;
end
$$;
`;
