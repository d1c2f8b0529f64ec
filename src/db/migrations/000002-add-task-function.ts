/**
 * `add_task(name, payload, options)`: enqueue from plain SQL or a trigger, inside the caller's transaction.
 * Options (jsonb): queue, priority, runAt, delayMs, maxAttempts, key. Returns the task id (the existing one
 * when `key` matched a queued or running task).
 */
export default /* sql */ `
create function add_task(p_name text, p_payload jsonb default '{}'::jsonb, p_options jsonb default '{}'::jsonb)
returns bigint language plpgsql volatile set search_path from current as $$
declare
  v_id bigint;
  v_queue text := coalesce(p_options ->> 'queue', 'default');
  v_key text := p_options ->> 'key';
begin
  insert into tasks (name, payload, queue, priority, run_at, max_attempts, key)
  values (
    p_name,
    coalesce(p_payload, '{}'::jsonb),
    v_queue,
    coalesce((p_options ->> 'priority')::integer, 0),
    coalesce((p_options ->> 'runAt')::timestamptz, now() + coalesce((p_options ->> 'delayMs')::numeric, 0) * interval '1 millisecond'),
    (p_options ->> 'maxAttempts')::integer,
    v_key
  )
  on conflict (queue, key) where key is not null and state in ('queued', 'running') do nothing
  returning id into v_id;
  if v_id is null then
    select id into v_id from tasks where queue = v_queue and key = v_key and state in ('queued', 'running');
  end if;
  return v_id;
end
$$;
`;
