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
  /**
   * How long after its claim the attempt started on its worker (ms, as the primary measured both), given only
   * when it started well after it (it waited claimed ahead): the row's started_at, the claim's time by the
   * database's clock, is then moved on by this much. Counted from the claim, not back from the outcome's
   * statement, so that a wait of that statement (behind other writes) is not taken for run time.
   */
  startedAfterClaimMs?: number | undefined;
  /** The length of a success's result as JSON text, when the worker measured it (the Settler bounds statements by it). */
  resultSize?: number | undefined;
  /**
   * A final outcome whose sender waits for it on the direct-submission socket, and hears of it there: no `done`
   * NOTIFY for it. A NOTIFY at commit wakes every listening session of the database, and made a lone outcome's
   * statement 0.2–0.45 ms slower here (0.48 → 0.69 ms back to back, 1.23 → 1.69 ms with pauses between them, a
   * listener present). Anyone else waiting for the task (result() of its id) sees it at its next re-read (1 s).
   */
  quiet?: boolean | undefined;
}

/** Outcomes per statement. */
export const maxSettleBatch = 1_000;
/** Ids per NOTIFY: a payload must stay under 8,000 bytes. */
const idsPerNotification = 300;

/**
 * Records many outcomes in one statement, fenced on the claiming supervisor: a supervisor that lost its
 * claim cannot overwrite what another recorded. Notifies `done` with the ids that reached a final state (but
 * the `quiet` ones) and `wake` when a task went back to the queue due now. Returns the ids actually settled, and
 * the time recorded as their `finished_at` (the statement's: one for the whole batch).
 */
export async function settleTasks(
  db: PreparingQueryable,
  schema: string,
  supervisorId: string,
  batch: readonly Settlement[],
): Promise<{ settled: string[]; finishedAt: Date }> {
  if (batch.length === 0) return { settled: [], finishedAt: new Date() };
  if (batch.length === 1) return settleOne(db, schema, supervisorId, batch[0]!);
  const q = quoteIdent(schema);
  const channels = channelsFor(schema);
  const input = batch.map((s) => ({
    id: s.id,
    state: s.state,
    result: s.result === undefined ? null : s.result,
    error: s.error ?? null,
    delay_ms: s.delayMs ?? 0,
    worker_pid: s.workerPid ?? null,
    started_after_claim_ms: s.startedAfterClaimMs,
    // Left out of the JSON when undefined: most tasks report none, and most are not quiet.
    progress: s.progress,
    quiet: s.quiet || undefined,
  }));
  const { rows } = await db.query<{ settled: string[] | null; finished_at: Date }>({
    // Named: parsed and planned once per connection (half the time of a one-outcome batch).
    name: `prefork_settle_${schema}`,
    text: `with input as (
       select * from jsonb_to_recordset($1::jsonb)
         as i(id bigint, state text, result jsonb, error jsonb, delay_ms float8, worker_pid integer, progress jsonb, started_after_claim_ms float8, quiet boolean)
     ),
     settled as (
       update ${q}.tasks t
          ${setOutcome({ state: 'i.state', result: 'i.result', error: 'i.error', delayMs: 'i.delay_ms', workerPid: 'i.worker_pid', progress: 'i.progress', startedAfterClaimMs: 'i.started_after_claim_ms' })}
         from input i
        where t.id = i.id and t.state = 'running' and t.supervisor_id = $2
       returning t.id, t.state, i.delay_ms, i.quiet
     ),
     done as (
       select string_agg(id::text, ',') as ids
         from (select id, (row_number() over () - 1) / $5 as chunk from settled where state <> 'queued' and quiet is not true) d
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

/** The SQL expressions of an outcome's values, in the batch statement (columns of `i`) or the single one (parameters). */
interface OutcomeValues {
  state: string;
  result: string;
  error: string;
  delayMs: string;
  workerPid: string;
  progress: string;
  startedAfterClaimMs: string;
}

/** The SET clause that records an outcome on `t`, the same for a batch and for one. */
function setOutcome(v: OutcomeValues): string {
  const startedAt = `case when ${v.startedAfterClaimMs} is null then t.started_at else least(now(), t.started_at + ${v.startedAfterClaimMs} * interval '1 millisecond') end`;
  return `set state = ${v.state},
              result = case when ${v.state} = 'succeeded' then ${v.result} else null end,
              -- A success has no error (the earlier attempts' errors stay in errors and history).
              error = case when ${v.state} = 'succeeded' then null else coalesce(${v.error}, t.error) end,
              errors = case when ${v.error} is null then t.errors else t.errors || jsonb_build_array(${v.error}) end,
              run_at = case when ${v.state} = 'queued' then now() + ${v.delayMs} * interval '1 millisecond' else t.run_at end,
              finished_at = case when ${v.state} = 'queued' then null else now() end,
              supervisor_id = case when ${v.state} = 'queued' then null else t.supervisor_id end,
              worker_pid = coalesce(${v.workerPid}, t.worker_pid),
              progress = coalesce(${v.progress}, t.progress),
              started_at = ${startedAt},
              -- The attempt that ends the task is in the row itself (read-tasks.ts adds it to the history on
              -- reading): only an attempt followed by another is written, which spares most outcomes a jsonb rewrite.
              history = case when ${v.state} <> 'queued' then t.history else t.history || jsonb_build_array(jsonb_build_object(
                'attempt', t.attempts, 'outcome', 'retried', 'workerPid', ${v.workerPid}, 'supervisorId', t.supervisor_id,
                'startedAt', ${startedAt}, 'finishedAt', now(), 'error', ${v.error})) end`;
}

/**
 * One outcome (a lone task's, one at a time: the common case at low load): the same update as settleTasks's,
 * with the values as parameters instead of a JSON document unpacked by jsonb_to_recordset, and one NOTIFY
 * without the chunking: 0.38 ms against 0.44 for the batch statement with one outcome in it (here, alternating
 * 3,000 of each, a durable commit included).
 */
async function settleOne(db: PreparingQueryable, schema: string, supervisorId: string, s: Settlement): Promise<{ settled: string[]; finishedAt: Date }> {
  const q = quoteIdent(schema);
  const channels = channelsFor(schema);
  const json = (value: unknown) => (value === undefined || value === null ? null : JSON.stringify(value));
  const { rows } = await db.query<{ settled: string[] | null; finished_at: Date }>({
    name: `prefork_settle_one_${schema}`,
    text: `with settled as (
       update ${q}.tasks t
          ${setOutcome({ state: '$2', result: '$3::jsonb', error: '$4::jsonb', delayMs: '$5::float8', workerPid: '$6::integer', progress: '$7::jsonb', startedAfterClaimMs: '$11::float8' })}
        where t.id = $1 and t.state = 'running' and t.supervisor_id = $8
       returning t.id
     ),
     notified as (
       select pg_notify(case when $2 = 'queued' then $10 else $9 end, case when $2 = 'queued' then '' else id::text end)
         from settled
        where case when $2 = 'queued' then $5::float8 <= 0 else not $12::boolean end
     )
     select array(select id::text from settled) as settled, now() as finished_at, (select count(*) from notified) as notified`,
    values: [s.id, s.state, s.state === 'succeeded' ? json(s.result) : null, json(s.error), s.delayMs ?? 0, s.workerPid ?? null, json(s.progress), supervisorId, channels.done, channels.wake,
      s.startedAfterClaimMs ?? null, s.quiet === true],
  });
  return { settled: rows[0]?.settled ?? [], finishedAt: rows[0]?.finished_at ?? new Date() };
}
