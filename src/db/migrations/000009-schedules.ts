/**
 * Scheduled tasks: one row per task name that has a schedule, holding the last tick fired. A supervisor fires a
 * tick by moving `last_fired_at` forward to it and adding the task in the same statement, so of several
 * supervisors that offer the task exactly one adds it.
 */
export default /* sql */ `
create table schedules (
  name text primary key,
  cron text not null,
  last_fired_at timestamptz not null,
  updated_at timestamptz not null default now()
);
`;
