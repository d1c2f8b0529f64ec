/**
 * When the next queued task of a supervisor's names becomes due, found priority by priority like the claim
 * (000007). It was `min(run_at)` over every queued row of those names: the claim index is ordered by priority
 * first, so that was a scan of all of them, and the dispatcher asks after every claim that left the queue
 * empty. Measured on PostgreSQL 15: 0.30 ms with nothing scheduled, 2.0 ms with 20,000 tasks scheduled, 11 ms
 * with 100,000 (a sequential scan); a trickle of new tasks, each a wake-up, paid that every time.
 *
 * Within one priority the claim index is ordered by run_at, so the level's first row of these names and queues
 * is its earliest; the earliest of the levels is the answer.
 */
export default /* sql */ `
create function next_run_at(task_names text[], only_queues text[]) returns timestamptz
language plpgsql stable
set search_path from current
set enable_sort = off
set enable_bitmapscan = off
set enable_seqscan = off
as $$
declare
  level integer;
  first_at timestamptz;
  earliest timestamptz;
begin
  select priority into level from tasks where state = 'queued' order by priority desc, run_at, id limit 1;
  while level is not null loop
    select run_at into first_at from tasks
     where state = 'queued' and priority = level and name = any(task_names)
       and (only_queues is null or queue = any(only_queues))
     order by priority desc, run_at, id limit 1;
    if first_at < earliest or earliest is null then
      earliest := first_at;
    end if;
    select priority into level from tasks where state = 'queued' and priority < level order by priority desc, run_at, id limit 1;
  end loop;
  return earliest;
end
$$;
`;
