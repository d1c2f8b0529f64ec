import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';

export type PauseOutcome = 'paused' | 'already_paused';
export type ResumeOutcome = 'resumed' | 'not_paused';

export interface PausedTask {
  name: string;
  pausedAt: Date;
  reason: string | null;
}

/** Tells every supervisor that the paused names changed (they read them again). */
async function notifyChanged(db: Queryable, schema: string): Promise<void> {
  await db.query('select pg_notify($1, $2)', [channelsFor(schema).control, JSON.stringify({ command: 'paused', target: '*' })]);
}

/** Pauses task names (a name paused already keeps its time and reason); `queued`: tasks of the name waiting now. */
export async function pauseTasks(
  db: Queryable,
  schema: string,
  names: readonly string[],
  reason: string | null,
): Promise<{ name: string; outcome: PauseOutcome; queued: number }[]> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ name: string; inserted: boolean; queued: number }>(
    `with added as (
       insert into ${q}.paused_tasks (name, reason) select unnest($1::text[]), $2 on conflict (name) do nothing returning name
     )
     select n.name, n.name in (select name from added) as inserted,
            (select count(*)::int from ${q}.tasks t where t.state = 'queued' and t.name = n.name) as queued
       from unnest($1::text[]) with ordinality as n(name, i) order by n.i`,
    [names, reason],
  );
  await notifyChanged(db, schema);
  return rows.map((r) => ({ name: r.name, outcome: r.inserted ? 'paused' : 'already_paused', queued: r.queued }));
}

/** Resumes task names: their queued tasks are claimed again at once. */
export async function resumeTasks(db: Queryable, schema: string, names: readonly string[]): Promise<{ name: string; outcome: ResumeOutcome; queued: number }[]> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ name: string; deleted: boolean; queued: number }>(
    `with removed as (delete from ${q}.paused_tasks where name = any($1::text[]) returning name)
     select n.name, n.name in (select name from removed) as deleted,
            (select count(*)::int from ${q}.tasks t where t.state = 'queued' and t.name = n.name) as queued
       from unnest($1::text[]) with ordinality as n(name, i) order by n.i`,
    [names],
  );
  await notifyChanged(db, schema);
  await db.query('select pg_notify($1, $2)', [channelsFor(schema).wake, '']);
  return rows.map((r) => ({ name: r.name, outcome: r.deleted ? 'resumed' : 'not_paused', queued: r.queued }));
}

export async function pausedTasks(db: Queryable, schema: string): Promise<PausedTask[]> {
  const { rows } = await db.query<{ name: string; paused_at: Date; reason: string | null }>(
    `select name, paused_at, reason from ${quoteIdent(schema)}.paused_tasks order by name`,
  );
  return rows.map((r) => ({ name: r.name, pausedAt: r.paused_at, reason: r.reason }));
}
