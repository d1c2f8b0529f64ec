/**
 * Direct submission: a supervisor publishes the Unix socket on which local senders hand it tasks, and a task
 * it inserts already claimed (`running`) wakes nobody: the insert trigger notifies only for queued rows. The
 * sender names each submission, so that one whose answer was lost (the supervisor died between commit and
 * reply) can be sent again through the database without making a second task.
 */
export default /* sql */ `
alter table supervisors add column socket_path text;
alter table tasks add column submission uuid;
create unique index tasks_submission_idx on tasks (submission) where submission is not null;

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
