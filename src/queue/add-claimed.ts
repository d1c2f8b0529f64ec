import type { PreparingQueryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { payloadJson } from './task-input.js';

export interface ClaimedInsert {
  name: string;
  payload: unknown;
  queue: string;
  priority: number;
  maxAttempts: number | null;
  key: string | null;
  supervisorId: string;
  /** The sender's UUID for this task (see add-submitted.ts). */
  submission: string;
  /**
   * The supervisor knows no task it could claim is due (its last claim left none and nothing woke it since):
   * the "is a due task waiting?" check is skipped. It would count tasks no supervisor claims now (of a paused
   * name, say) and send every direct submission through the queue while they wait.
   */
  nothingDue?: boolean;
  /**
   * The sender learns nothing of this task before a later durable commit (its outcome's, or the one
   * `DirectSubmissions` makes before a held-back `accepted`): a row inserted `running` is then committed without
   * waiting for its WAL flush (`synchronous_commit` off for this statement's transaction only). Any later
   * durable commit flushes the WAL up to its own record, this one's included, so the task is on disk before the
   * sender hears of it. A row that goes to the queue is answered at once, and is committed durably as ever.
   * Ignored with a `key`: a deduplicated send is answered at once.
   */
  flushWithOutcome?: boolean;
}

export interface InsertedTask {
  id: string;
  /** `running`: claimed by the inserting supervisor in the same statement; `queued`: went to the queue. */
  state: 'queued' | 'running';
  /** True when `key` matched a task already queued or running: nothing was inserted. */
  deduplicated: boolean;
  /** Committed without its WAL flush (`flushWithOutcome`, and the row went in `running`): not yet on disk. */
  flushDeferred: boolean;
  maxAttempts: number | null;
  createdAt: Date;
}

/**
 * Inserts a task handed to a supervisor directly, claimed by it in the same statement (one commit: the task
 * is durable, unless `flushWithOutcome`, and claimed at once, and nobody is woken for it). The task does not jump
 * the queue: when a due task of the same or higher priority is waiting, or its name is paused, it is inserted
 * `queued` like any other.
 */
export async function insertClaimed(db: PreparingQueryable, schema: string, t: ClaimedInsert): Promise<InsertedTask> {
  const q = quoteIdent(schema);
  // CASE evaluates the check only when the supervisor does not already know the answer. A paused name goes to the
  // queue too, as read by this statement: a pause committed before the send is seen here, though the supervisor
  // may not have heard of it yet. set_config() makes the CTE volatile, so it is evaluated once, before the insert
  // reads it; `true`: for this transaction only, the session's own setting untouched. Without
  // `flushWithOutcome`, it sets the setting the commit has anyway.
  const waiting = `with waiting as (
    select yes, set_config('synchronous_commit', case when $10::boolean and not yes then 'off' else current_setting('synchronous_commit') end, true) as commit_mode
      from (select case when $9::boolean then false else ${q}.due_task_waiting($4) end
                   or exists (select 1 from ${q}.paused_tasks p where p.name = $1) as yes) checked)`;
  const insert = `insert into ${q}.tasks (name, payload, queue, priority, max_attempts, key, submission, state, attempts, started_at, supervisor_id)
       select $1, $2::jsonb, $3, $4, $5, $6, $8::uuid,
              case when waiting.yes then 'queued' else 'running' end,
              case when waiting.yes then 0 else 1 end,
              case when waiting.yes then null else now() end,
              case when waiting.yes then null else $7::uuid end
         from waiting`;
  const flushLater = t.flushWithOutcome === true && t.key === null;
  const values = [t.name, payloadJson(t.payload), t.queue, t.priority, t.maxAttempts, t.key, t.supervisorId, t.submission, t.nothingDue === true, flushLater];
  type Row = { id: string; state: 'queued' | 'running'; deduplicated: boolean; max_attempts: number | null; created_at: Date };
  // Without a key, the plain statement: the conflict arm costs a third of the time of the whole.
  const { rows } =
    t.key === null
      ? await db.query<Row>({
          name: `prefork_insert_claimed_${schema}`,
          text: `${waiting} ${insert} returning id::text, state, false as deduplicated, max_attempts, created_at`,
          values,
        })
      : await db.query<Row>({
          name: `prefork_insert_claimed_key_${schema}`,
          text: `${waiting},
     added as (
       ${insert}
       on conflict (queue, key) where key is not null and state in ('queued', 'running') do nothing
       returning id, state, max_attempts, created_at
     )
     select id::text, state, false as deduplicated, max_attempts, created_at from added
     union all
     select id::text, state, true, max_attempts, created_at from ${q}.tasks
      where queue = $3 and key = $6 and state in ('queued', 'running') and not exists (select 1 from added)`,
          values,
        });
  const row = rows[0];
  if (!row) throw new Error(`could not add or find the task with key "${t.key}"`);
  return {
    id: row.id,
    state: row.state,
    deduplicated: row.deduplicated,
    flushDeferred: flushLater && row.state === 'running',
    maxAttempts: row.max_attempts,
    createdAt: row.created_at,
  };
}
