/**
 * Where a supervisor's pid means something: the machine's boot and the PID namespace it runs in. A host name
 * alone does not say it: pods and containers on the host's network (Kubernetes' hostNetwork, Docker's
 * --network host) share the node's name, each with its own pids. Null for a supervisor of an earlier version
 * (or off Linux): its pid is never checked from another process.
 */
export default /* sql */ `
alter table supervisors add column pid_scope text;
`;
