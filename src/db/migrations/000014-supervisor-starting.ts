/**
 * A supervisor is `starting` from its registration until its workers are ready: `status` says so, and `send`
 * does not warn that nobody serves the schema while one is on its way. The default stays `running`, for a
 * supervisor of an earlier version that registers without a state.
 */
export default /* sql */ `
alter table supervisors drop constraint supervisors_state_check;
alter table supervisors add constraint supervisors_state_check check (state in ('starting', 'running', 'stopping', 'stopped', 'lost'));
`;
