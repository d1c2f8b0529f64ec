/**
 * The attempts a task gets when its row sets none (its definition's maxAttempts, else the supervisor's
 * --max-attempts), as the supervisors last offered it: what `Client.get`, `prefork tasks` and `inspect` show as
 * the task's maximum.
 */
export default /* sql */ `
alter table known_tasks add column max_attempts integer;
`;
