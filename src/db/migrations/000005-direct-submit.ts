/**
 * Direct submission: a supervisor publishes the Unix socket on which local senders hand it tasks, and a task
 * it inserts already claimed (`running`) wakes nobody: the insert trigger notifies only for queued rows.
 */
export default /* sql */ `
alter table supervisors add column socket_path text;

drop trigger tasks_wake on tasks;
create or replace function wake() returns trigger language plpgsql set search_path from current as $$
begin
  if exists (select 1 from inserted where state = 'queued') then
    perform pg_notify(tg_table_schema || ':wake', '');
  end if;
  return null;
end
$$;
create trigger tasks_wake after insert on tasks referencing new table as inserted
  for each statement execute function wake();
`;
