import type { PreparingQueryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';
import type { SerializedError } from '../errors.js';
import type { TaskState } from './task-row.js';

/** The outcome of one attempt, as the primary decided it. */
export interface Settlement {
  id: string;
  /** The task's name, for the supervisor's own use (not written). */
  name?: string | undefined;
  /** The progress the attempt last reported (undefined: none); written with the outcome, so a result read after it shows it. */
  progress?: unknown;
  /** `queued` sends the task back for another attempt after `delayMs`. */
  state: Extract<TaskState, 'queued' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled'>;
  result?: unknown;
  error?: SerializedError | null | undefined;
  delayMs?: number | undefined;
  workerPid?: number | null | undefined;
  /** The length of a success's result as JSON text, when the worker measured it (the Settler bounds statements by it). */
  resultSize?: number | undefined;
}

/** Outcomes per statement. */
export const maxSettleBatch = 1_000;
/** Ids per NOTIFY: a payload must stay under 8,000 bytes. */
const idsPerNotification = 300;

/**
 * Records many outcomes in one statement, fenced on the claiming supervisor: a supervisor that lost its
 * claim cannot overwrite what another recorded. Notifies `done` with the ids that reached a final state
 * and `wake` when a task went back to the queue due now. Returns the ids actually settled, and the time recorded
 * as their `finished_at` (the statement's: one for the whole batch).
 */
export async function settleTasks(
  db: PreparingQueryable,
  schema: string,
  supervisorId: string,
  batch: readonly Settlement[],
): Promise<{ settled: string[]; finishedAt: Date }> {
  if (batch.length === 0) return { settled: [], finishedAt: new Date() };
  const q = quoteIdent(schema);
  const channels = channelsFor(schema);
  const input = batch.map((s) => ({
    id: s.id,
    state: s.state,
    result: s.result === undefined ? null : s.result,
    error: s.error ?? null,
    delay_ms: s.delayMs ?? 0,
    worker_pid: s.workerPid ?? null,
    // Left out of the JSON when undefined: most tasks report none.
    progress: s.progress,
  }));
  const { rows } = await db.query<{ settled: string[] | null; finished_at: Date }>({
    // Named: parsed and planned once per connection (half the time of a one-outcome batch).
    name: `prefork_settle_${schema}`,
    text: `with input as (
       select * from jsonb_to_recordset($1::jsonb)
         as i(id bigint, state text, result jsonb, error jsonb, delay_ms float8, worker_pid integer, progress jsonb)
     ),
     settled as (
       update ${q}.tasks t
          set state = i.state,
              result = case when i.state = 'succeeded' then i.result else null end,
              error = coalesce(i.error, t.error),
              errors = case when i.error is null then t.errors else t.errors || jsonb_build_array(i.error) end,
              run_at = case when i.state = 'queued' then now() + i.delay_ms * interval '1 millisecond' else t.run_at end,
              finished_at = case when i.state = 'queued' then null else now() end,
              supervisor_id = case when i.state = 'queued' then null else t.supervisor_id end,
              worker_pid = coalesce(i.worker_pid, t.worker_pid),
              progress = coalesce(i.progress, t.progress),
              -- The attempt that ends the task is in the row itself (read-tasks.ts adds it to the history on
              -- reading): only an attempt followed by another is written, which spares most outcomes a jsonb rewrite.
              history = case when i.state <> 'queued' then t.history else t.history || jsonb_build_array(jsonb_build_object(
                'attempt', t.attempts, 'outcome', 'retried', 'workerPid', i.worker_pid, 'supervisorId', t.supervisor_id,
                'startedAt', t.started_at, 'finishedAt', now(), 'error', i.error)) end
         from input i
        where t.id = i.id and t.state = 'running' and t.supervisor_id = $2
       returning t.id, t.state, i.delay_ms
     ),
     done as (
       select string_agg(id::text, ',') as ids
         from (select id, (row_number() over () - 1) / $5 as chunk from settled where state <> 'queued') d
        group by chunk
     ),
     notify_done as (select pg_notify($3, ids) from done),
     notify_wake as (select pg_notify($4, '') from (select 1 from settled where state = 'queued' and delay_ms <= 0 limit 1) s)
     select array(select id::text from settled) as settled, now() as finished_at,
            (select count(*) from notify_done) + (select count(*) from notify_wake) as notified`,
    values: [JSON.stringify(input), supervisorId, channels.done, channels.wake, idsPerNotification],
  });
  return { settled: rows[0]?.settled ?? [], finishedAt: rows[0]?.finished_at ?? new Date() };
}
