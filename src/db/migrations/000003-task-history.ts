/** One entry per attempt: who ran it, when, and how it ended. */
export default /* sql */ `
alter table tasks add column history jsonb not null default '[]'::jsonb;
`;
