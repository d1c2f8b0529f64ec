/** What a running task last reported with `ctx.progress(value)` (any JSON), for the client and `inspect`. */
export default /* sql */ `
alter table tasks add column progress jsonb;
`;
