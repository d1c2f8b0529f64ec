import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { notifyControl, notifyWake } from './notify.js';

export type PauseOutcome = 'paused' | 'already_paused';
export type ResumeOutcome = 'resumed' | 'not_paused';

export interface PausedTask {
  name: string;
  pausedAt: Date;
  reason: string | null;
}

/** Pauses task names (a name paused already keeps its time and reason); `queued`: tasks of the name waiting now. */
export async function pauseTasks(
  db: Queryable,
  schema: string,
  names: readonly string[],
  reason: string | null,
): Promise<{ name: string; outcome: PauseOutcome; queued: number }[]> {
  const change = `insert into ${quoteIdent(schema)}.paused_tasks (name, reason) select unnest($1::text[]), $2 on conflict (name) do nothing returning name`;
  const rows = await changePaused(db, schema, names, change, [reason]);
  return rows.map((r) => ({ name: r.name, outcome: r.changed ? 'paused' : 'already_paused', queued: r.queued }));
}

/** Resumes task names: their queued tasks are claimed again at once. */
export async function resumeTasks(db: Queryable, schema: string, names: readonly string[]): Promise<{ name: string; outcome: ResumeOutcome; queued: number }[]> {
  const rows = await changePaused(db, schema, names, `delete from ${quoteIdent(schema)}.paused_tasks where name = any($1::text[]) returning name`, []);
  await notifyWake(db, schema);
  return rows.map((r) => ({ name: r.name, outcome: r.changed ? 'resumed' : 'not_paused', queued: r.queued }));
}

/**
 * Runs `change` (a statement on paused_tasks over the names in $1, returning those it changed) and tells every
 * supervisor to read the paused names again. Per name, in the order given: whether it changed, and how many of
 * its tasks are queued.
 */
async function changePaused(
  db: Queryable,
  schema: string,
  names: readonly string[],
  change: string,
  values: unknown[],
): Promise<{ name: string; changed: boolean; queued: number }[]> {
  const { rows } = await db.query<{ name: string; changed: boolean; queued: number }>(
    `with changed as (${change})
     select n.name, n.name in (select name from changed) as changed,
            (select count(*)::int from ${quoteIdent(schema)}.tasks t where t.state = 'queued' and t.name = n.name) as queued
       from unnest($1::text[]) with ordinality as n(name, i) order by n.i`,
    [names, ...values],
  );
  await notifyControl(db, schema, { command: 'paused' });
  return rows;
}

export async function pausedTasks(db: Queryable, schema: string): Promise<PausedTask[]> {
  const { rows } = await db.query<{ name: string; paused_at: Date; reason: string | null }>(
    `select name, paused_at, reason from ${quoteIdent(schema)}.paused_tasks order by name`,
  );
  return rows.map((r) => ({ name: r.name, pausedAt: r.paused_at, reason: r.reason }));
}
