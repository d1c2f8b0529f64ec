import type { PreparingQueryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';

/** The key a scheduled task is added with: while one run is queued or running, a tick adds no second. */
export function scheduleKey(name: string): string {
  return `prefork:schedule:${name}`;
}

/**
 * Fires one tick of a task's schedule: moves the schedule's `last_fired_at` forward to `tick` and adds the task,
 * in one statement. `fired` is false when another supervisor fired this tick (or a later one) first; `taskId` is
 * null when the tick fired but the previous run, queued or running, holds the schedule's key (no pile-up).
 */
export async function fireSchedule(
  db: PreparingQueryable,
  schema: string,
  s: { name: string; cron: string; tick: Date; payload: unknown },
): Promise<{ fired: boolean; taskId: string | null }> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ fired: boolean; task_id: string | null }>({
    name: `prefork_fire_schedule_${schema}`,
    text: `with tick as (
       insert into ${q}.schedules as s (name, cron, last_fired_at) values ($1, $2, $3)
       on conflict (name) do update set last_fired_at = excluded.last_fired_at, cron = excluded.cron, updated_at = now()
        where s.last_fired_at < excluded.last_fired_at
       returning 1
     ),
     added as (
       insert into ${q}.tasks (name, payload, key)
       select $1, $4::jsonb, $5 from tick
       on conflict (queue, key) where key is not null and state in ('queued', 'running') do nothing
       returning id
     )
     select exists (select 1 from tick) as fired, (select id::text from added) as task_id`,
    values: [s.name, s.cron, s.tick, JSON.stringify(s.payload), scheduleKey(s.name)],
  });
  return { fired: rows[0]?.fired ?? false, taskId: rows[0]?.task_id ?? null };
}
