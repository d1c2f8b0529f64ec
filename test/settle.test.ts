/**
 * settleTasks() against a real server: an outcome alone is written by its own statement (parameters), several
 * by the batch statement (a JSON document); both must record the same rows and send the same notifications.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { channelsFor } from '../src/db/identifiers.js';
import { settleTasks, type Settlement } from '../src/queue/settle-tasks.js';
import { databaseUrl, useTestSchema } from './support/database.js';

const schemaName = useTestSchema();
const supervisorId = '00000000-0000-4000-8000-000000000001';
const otherSupervisor = '00000000-0000-4000-8000-000000000002';
let client: pg.Client;
let listener: pg.Client;
let schema: string;
let notices: { channel: string; payload: string }[];

beforeEach(async () => {
  schema = schemaName();
  client = new pg.Client({ connectionString: databaseUrl(), application_name: 'prefork settle test' });
  await client.connect();
  await migrate(client, schema);
  await client.query(`insert into "${schema}".supervisors (id, host, pid) values ($1, 'test', 1), ($2, 'test', 2)`, [supervisorId, otherSupervisor]);
  listener = new pg.Client({ connectionString: databaseUrl(), application_name: 'prefork settle test listener' });
  await listener.connect();
  notices = [];
  listener.on('notification', (n) => notices.push({ channel: n.channel, payload: n.payload ?? '' }));
  const channels = channelsFor(schema);
  await listener.query(`listen "${channels.done}"; listen "${channels.wake}"`);
});

afterEach(async () => {
  await listener.end();
  await client.end();
});

/** Running tasks claimed by `supervisorId` (the last by another supervisor), with some progress already recorded. */
async function runningTasks(n: number): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `insert into "${schema}".tasks (name, payload, state, attempts, started_at, supervisor_id, worker_pid, progress)
     select 'report', jsonb_build_object('i', i), 'running', 1, now(), case when i = $1 then $3::uuid else $2::uuid end, 7, '{"step":1}'
       from generate_series(1, $1) i returning id::text`,
    [n, supervisorId, otherSupervisor],
  );
  return rows.map((r) => r.id);
}

/** The outcomes of one of each kind, for these ids (the last one's task is held by the other supervisor). */
function outcomes(ids: string[]): Settlement[] {
  const error = (code: string) => ({ name: 'Error', code, message: `${code} happened`, retryable: true });
  const kinds: Omit<Settlement, 'id'>[] = [
    { state: 'succeeded', result: { roadmap: ['a', 'b'] }, workerPid: 11, progress: { step: 3 } },
    { state: 'succeeded', result: 'text' },
    { state: 'succeeded', result: undefined, workerPid: 12 },
    { state: 'failed', error: error('BOOM'), workerPid: 13 },
    { state: 'timed_out', error: error('HARD_TIMEOUT') },
    { state: 'cancelled', error: null },
    { state: 'queued', error: error('RETRY_NOW'), delayMs: 0, workerPid: 14 },
    { state: 'queued', error: error('RETRY_LATER'), delayMs: 60_000 },
    { state: 'succeeded', result: 1 },
  ];
  return ids.map((id, i) => ({ id, ...kinds[i]! }));
}

/** What the rows hold, comparable between two sets of tasks: times as facts about them, ids by position. */
async function recorded(ids: string[]): Promise<unknown[]> {
  const { rows } = await client.query(
    `select state, result, error, errors, attempts, worker_pid, progress, supervisor_id,
            finished_at is not null as finished, run_at > now() + interval '30 seconds' as later,
            jsonb_path_query_array(history, '$[*].outcome') as history_outcomes,
            jsonb_path_query_array(history, '$[*].error.code') as history_errors,
            jsonb_path_query_array(history, '$[*].workerPid') as history_pids
       from "${schema}".tasks where id = any($1::bigint[]) order by id`,
    [ids],
  );
  return rows;
}

async function settledNotices(ids: string[]): Promise<{ done: string[]; wakes: number }> {
  // The listener's session sends what was notified to it before it answers this (the notifying commits are done).
  await listener.query('select 1');
  const channels = channelsFor(schema);
  const done = notices.filter((n) => n.channel === channels.done).flatMap((n) => n.payload.split(','));
  const wakes = notices.filter((n) => n.channel === channels.wake).length;
  notices = [];
  return { done: done.map((id) => String(ids.indexOf(id))), wakes };
}

describe('settleTasks', () => {
  it('records one outcome alone as a batch records it, fenced on the supervisor, with the same notifications', async () => {
    const alone = await runningTasks(9);
    const inBatch = await runningTasks(9);
    await settledNotices([]);

    const settledAlone: string[] = [];
    for (const outcome of outcomes(alone)) settledAlone.push(...(await settleTasks(client, schema, supervisorId, [outcome])).settled);
    const aloneNotices = await settledNotices(alone);
    const { settled: settledInBatch } = await settleTasks(client, schema, supervisorId, outcomes(inBatch));
    const batchNotices = await settledNotices(inBatch);

    // The ninth task is another supervisor's: neither statement touches it.
    expect(settledAlone).toEqual(alone.slice(0, 8));
    expect(settledInBatch).toEqual(inBatch.slice(0, 8));
    const rows = await recorded(alone);
    expect(rows).toEqual(await recorded(inBatch));
    expect(rows[0]).toMatchObject({ state: 'succeeded', result: { roadmap: ['a', 'b'] }, progress: { step: 3 }, worker_pid: 11, finished: true });
    expect(rows[2]).toMatchObject({ state: 'succeeded', result: null, progress: { step: 1 }, worker_pid: 12 });
    expect(rows[3]).toMatchObject({ state: 'failed', result: null, error: { code: 'BOOM' }, errors: [{ code: 'BOOM' }] });
    expect(rows[6]).toMatchObject({ state: 'queued', supervisor_id: null, finished: false, later: false, history_outcomes: ['retried'], history_errors: ['RETRY_NOW'], history_pids: [14] });
    expect(rows[7]).toMatchObject({ state: 'queued', later: true, history_errors: ['RETRY_LATER'] });
    expect(rows[8]).toMatchObject({ state: 'running', supervisor_id: otherSupervisor, result: null });

    // `done` names the six tasks that reached a final state; `wake` comes for the retry due now, not the later one.
    expect(aloneNotices.done.sort()).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(batchNotices.done.sort()).toEqual(aloneNotices.done.sort());
    expect(aloneNotices.wakes).toBe(1);
    expect(batchNotices.wakes).toBe(1);
  });

  it('quiet outcomes (their sender hears of them on its socket) are recorded alike, without a done notification, alone or in a batch', async () => {
    const alone = await runningTasks(9);
    const inBatch = await runningTasks(9);
    const loud = await runningTasks(9);
    await settledNotices([]);
    // Every outcome quiet; a retry is never quiet in practice, and its `wake` goes whatever the flag says.
    const quiet = (ids: string[]) => outcomes(ids).map((o) => ({ ...o, quiet: true }));
    for (const outcome of quiet(alone)) await settleTasks(client, schema, supervisorId, [outcome]);
    expect(await settledNotices(alone)).toEqual({ done: [], wakes: 1 });
    // In a batch, only the quiet ones go unannounced.
    const mixed = quiet(inBatch).map((o, i) => (i % 2 === 0 ? o : { ...o, quiet: undefined }));
    await settleTasks(client, schema, supervisorId, mixed);
    expect((await settledNotices(inBatch)).done.sort()).toEqual(['1', '3', '5']);
    await settleTasks(client, schema, supervisorId, outcomes(loud));
    await settledNotices(loud);
    expect(await recorded(alone)).toEqual(await recorded(loud));
    expect(await recorded(inBatch)).toEqual(await recorded(loud));
  });

  it('records a late start as the claim time plus the delay measured, however long after the outcome is written', async () => {
    const [alone, a, b] = await runningTasks(3);
    // Claimed long before the outcomes are written (the rows' started_at is the claim's time).
    await client.query(`update "${schema}".tasks set started_at = '2026-01-01 00:00:00+00', supervisor_id = $1 where id = any($2::bigint[])`, [supervisorId, [alone, a, b]]);
    await settleTasks(client, schema, supervisorId, [{ id: alone!, state: 'succeeded', result: 1, startedAfterClaimMs: 1_250 }]);
    await settleTasks(client, schema, supervisorId, [
      { id: a!, state: 'succeeded', result: 2, startedAfterClaimMs: 2_500 },
      { id: b!, state: 'queued', error: { name: 'Error', code: 'AGAIN', message: 'again', retryable: true }, delayMs: 60_000, startedAfterClaimMs: 400 },
    ]);
    const { rows } = await client.query<{ state: string; started: string }>(
      `select state, to_char(coalesce((history->0->>'startedAt')::timestamptz, started_at) at time zone 'UTC', 'HH24:MI:SS.MS') as started
         from "${schema}".tasks where id = any($1::bigint[]) order by id`,
      [[alone, a, b]],
    );
    expect(rows).toEqual([
      { state: 'succeeded', started: '00:00:01.250' },
      { state: 'succeeded', started: '00:00:02.500' },
      // A retried attempt: its start is in the history.
      { state: 'queued', started: '00:00:00.400' },
    ]);
  });
});
