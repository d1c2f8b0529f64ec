import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';

/**
 * Gives running tasks back to the queue without counting the attempt: used when the supervisor stops before
 * they could run to the end through no fault of theirs. Other supervisors are woken.
 */
export async function releaseTasks(db: Queryable, schema: string, supervisorId: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ released: string }>(
    `with released as (
       update ${q}.tasks
          set state = 'queued', attempts = greatest(attempts - 1, 0), supervisor_id = null, worker_pid = null,
              started_at = null, run_at = now()
        where id = any($1::bigint[]) and state = 'running' and supervisor_id = $2
       returning id
     )
     select count(*)::text as released, (select count(*) from (select pg_notify($3, '') from released limit 1) n) as woken
       from released`,
    [ids, supervisorId, channelsFor(schema).wake],
  );
  return Number(rows[0]?.released ?? 0);
}
