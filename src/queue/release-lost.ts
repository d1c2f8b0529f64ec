import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';

/**
 * Tasks `running` under this (live) supervisor that it does not hold: a claim or a direct insert whose commit
 * succeeded but whose reply was lost with its connection, or a release that failed. Nothing would ever run or
 * free them while the supervisor lives (other supervisors leave a live one's tasks alone), so they go back to
 * the queue, uncounted: they never reached a worker. Only tasks claimed more than `olderThanMs` ago, by the
 * database's clock, and not among `held` (what the supervisor has in memory) are taken. Returns their ids.
 */
export async function releaseLost(db: Queryable, schema: string, supervisorId: string, olderThanMs: number, held: readonly string[]): Promise<string[]> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ ids: string[] }>(
    `with lost as (
       update ${q}.tasks
          set state = 'queued', attempts = greatest(attempts - 1, 0), supervisor_id = null, worker_pid = null,
              started_at = null, run_at = now()
        where state = 'running' and supervisor_id = $1 and started_at < now() - $2 * interval '1 millisecond'
          and id <> all($3::bigint[])
       returning id
     )
     select array(select id::text from lost order by lost.id) as ids, (select count(*) from (select pg_notify($4, '') from lost limit 1) n) as woken`,
    [supervisorId, olderThanMs, held, channelsFor(schema).wake],
  );
  return rows[0]?.ids ?? [];
}
