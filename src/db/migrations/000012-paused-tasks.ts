/**
 * Paused task names: no supervisor claims their tasks (they wait queued) until resumed. Running ones finish.
 * Supervisors read the table at start, on the control NOTIFY that `pause`/`resume` send, and every few seconds.
 */
export default /* sql */ `
create table paused_tasks (
  name text primary key,
  paused_at timestamptz not null default now(),
  reason text
);
`;
