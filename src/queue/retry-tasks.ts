import type { Queryable } from '../db/queryable.js';
import { channelsFor, quoteIdent } from '../db/identifiers.js';
import { maxAttemptsOf } from './known-tasks.js';
import { historyWithFinalAttempt } from './read-tasks.js';

/** The states a retry takes a task out of: it ended without succeeding. */
export const retryableStates = ['failed', 'timed_out', 'cancelled'] as const;
export type RetryableState = (typeof retryableStates)[number];
/** What a bulk retry takes when no states are given: cancelled tasks come back only when asked for. */
export const defaultRetryStates: readonly RetryableState[] = ['failed', 'timed_out'];

/**
 * What a retry did to one task: `retried` (queued again, due now); `not_found`; `succeeded` (not retried: send
 * it again instead); `not_finished` (queued or running); `key_in_use` (its key belongs to a task queued or
 * running now, so it would be a duplicate).
 */
export type RetryOutcome = 'retried' | 'not_found' | 'succeeded' | 'not_finished' | 'key_in_use';

/** Which finished tasks a bulk retry takes: those in `states`, of one task name and one queue when given. */
export interface RetryFilter {
  states: readonly RetryableState[];
  name?: string | undefined;
  queue?: string | undefined;
}

/**
 * The statement's body, for ids or for a filter. A task is queued again due now, with `attempts` more attempts
 * than it has had, and a cancelled one at least the attempts it had left (its count goes on, so its history keeps
 * one entry per attempt: the attempt that ended it is written there, as `getTask` shows it). Its last error stays until the next attempt ends. A task whose key a
 * queued or running task holds is left alone, as is all but the newest of several given with one key. One NOTIFY
 * wakes the supervisors.
 */
function retryStatement(schema: string, candidates: string, attemptsParam: string, wakeParam: string): string {
  const q = quoteIdent(schema);
  return `candidates as (${candidates}),
     conflicted as (
       select c.id from candidates c
        where c.key is not null
          and (exists (select 1 from ${q}.tasks o where o.queue = c.queue and o.key = c.key and o.state in ('queued', 'running'))
               or exists (select 1 from candidates d where d.queue = c.queue and d.key = c.key and d.id > c.id))
     ),
     retried as (
       update ${q}.tasks t
          set state = 'queued', run_at = now(), finished_at = null, supervisor_id = null, result = null,
              -- A cancelled task keeps the attempts it had not used (one cancelled while queued had them all).
              max_attempts = case when t.state = 'cancelled' then greatest(t.attempts + ${attemptsParam}::int, ${maxAttemptsOf(schema, 't')})
                                  else t.attempts + ${attemptsParam}::int end,
              history = ${historyWithFinalAttempt('t')}
        where t.id in (select id from candidates except select id from conflicted)
          and t.state in ('failed', 'timed_out', 'cancelled')
       returning t.id
     ),
     woken as (select pg_notify(${wakeParam}, '') from (select 1 from retried limit 1) r)`;
}

/** Retries the given tasks; returns each id's outcome, in the order given (duplicates once). */
export async function retryTasks(db: Queryable, schema: string, ids: readonly string[], attempts: number): Promise<{ id: string; outcome: RetryOutcome }[]> {
  const q = quoteIdent(schema);
  const unique = [...new Set(ids)];
  const { rows } = await db.query<{ id: string; outcome: RetryOutcome }>(
    `with input as (select id, ord from unnest($1::bigint[]) with ordinality as i(id, ord)),
     ${retryStatement(
       schema,
       `select t.id, t.queue, t.key from ${q}.tasks t where t.id in (select id from input) and t.state in ('failed', 'timed_out', 'cancelled')`,
       '$2',
       '$3',
     )}
     select i.id::text,
            case when r.id is not null then 'retried'
                 when t.id is null then 'not_found'
                 when t.state = 'succeeded' then 'succeeded'
                 when i.id in (select id from conflicted) then 'key_in_use'
                 -- queued or running; or retried by another statement since this one's snapshot
                 else 'not_finished' end as outcome,
            (select count(*) from woken) as woken
       from input i left join retried r on r.id = i.id left join ${q}.tasks t on t.id = i.id
      order by i.ord`,
    [unique, attempts, channelsFor(schema).wake],
  );
  return rows.map((r) => ({ id: r.id, outcome: r.outcome }));
}

/**
 * Retries every finished task the filter selects; returns the outcome of each selected: `retried`, or `key_in_use`
 * for those a key held back (each kind oldest first), as `retryTasks` does for ids.
 */
export async function retryMatching(db: Queryable, schema: string, filter: RetryFilter, attempts: number): Promise<{ id: string; outcome: RetryOutcome }[]> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ retried: string[]; key_in_use: string[] }>(
    `with ${retryStatement(
      schema,
      `select t.id, t.queue, t.key from ${q}.tasks t
        where t.state = any($3::text[]) and ($4::text is null or t.name = $4) and ($5::text is null or t.queue = $5)`,
      '$1',
      '$2',
    )}
     select array(select id::text from retried order by retried.id) as retried, array(select id::text from conflicted order by conflicted.id) as key_in_use,
            (select count(*) from woken) as woken`,
    [attempts, channelsFor(schema).wake, filter.states, filter.name ?? null, filter.queue ?? null],
  );
  const row = rows[0];
  return [
    ...(row?.retried ?? []).map((id) => ({ id, outcome: 'retried' as const })),
    ...(row?.key_in_use ?? []).map((id) => ({ id, outcome: 'key_in_use' as const })),
  ];
}
