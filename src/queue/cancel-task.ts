import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';
import { notifyControl } from './notify.js';

export type CancelOutcome = 'cancelled' | 'cancelling' | 'finished' | 'not_found';

/**
 * A queued task is cancelled at once and never runs. A running one is asked to stop: the supervisor that
 * holds it aborts its signal (its hard time limit still applies) and records it `cancelled`.
 */
export async function cancelTask(db: Queryable, schema: string, id: string): Promise<CancelOutcome> {
  const q = quoteIdent(schema);
  const channels = channelsFor(schema);
  const error = JSON.stringify({ name: 'CancelledError', code: 'CANCELLED', message: 'the task was cancelled' });
  const { rows } = await db.query<{ state: string; cancelled: boolean }>(
    `with cancelled as (
       update ${q}.tasks set state = 'cancelled', finished_at = now(), error = $2::jsonb, errors = errors || jsonb_build_array($2::jsonb)
        where id = $1 and state = 'queued'
       returning id
     ),
     notified as (select pg_notify($3, id::text) from cancelled)
     select t.state, exists (select 1 from cancelled) as cancelled, (select count(*) from notified) as n
       from ${q}.tasks t where t.id = $1`,
    [id, error, channels.done],
  );
  const row = rows[0];
  if (!row) return 'not_found';
  if (row.cancelled) return 'cancelled';
  if (row.state !== 'running' && row.state !== 'queued') return 'finished';
  // Running (or claimed a moment ago): the supervisor holding it aborts it.
  await notifyControl(db, schema, { command: 'cancel', taskId: id });
  return 'cancelling';
}
