/**
 * claim_tasks() against a real server: what it claims, in which order, and the plan it runs with. The plan is
 * read from the server itself (auto_explain, sent back as notices), for the first calls of a session and for
 * those after the fifth, when PL/pgSQL switches to a cached generic plan. With it, the other walks of the claim
 * index (due_task_waiting(), next_run_at()): how many pages they read with many tasks scheduled for later.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { claimTasks, nextRunAt, type ClaimRequest } from '../src/queue/claim-tasks.js';
import { databaseUrl, useTestSchema } from './support/database.js';
import { insertTasks } from './support/tasks.js';

const schemaName = useTestSchema();
const supervisorId = '00000000-0000-4000-8000-000000000001';
let client: pg.Client;
let schema: string;

beforeEach(async () => {
  schema = schemaName();
  client = new pg.Client({ connectionString: databaseUrl(), application_name: 'prefork claim test' });
  await client.connect();
  await migrate(client, schema);
  await client.query(`insert into "${schema}".supervisors (id, host, pid) values ($1, 'test', 1)`, [supervisorId]);
});

afterEach(async () => {
  await client.end();
});

const request = (limit: number, names = ['report'], queues: string[] | null = null): ClaimRequest => ({
  supervisorId,
  names,
  limit,
  maxAttemptsByName: { report: 7 },
  defaultMaxAttempts: 3,
  queues,
});

/** The plans of the statement inside claim_tasks(), one per call, as the server chose them. */
async function explainedClaims(): Promise<string[]> {
  const plans: string[] = [];
  client.on('notice', (notice) => {
    if (notice.message?.includes('with next as')) plans.push(notice.message);
  });
  await client.query(`load 'auto_explain'`);
  await client.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_nested_statements = on; set auto_explain.log_level = 'notice'`);
  return plans;
}

/**
 * Pages a call reads, its statements included (EXPLAIN ANALYZE's buffer counts), once PL/pgSQL runs the cached
 * generic plans: the first five calls of a session also plan, and planning reads pages of its own.
 */
async function pagesRead(sql: string, values: unknown[] = []): Promise<number> {
  for (let warm = 0; warm < 6; warm++) await client.query(sql, values);
  const { rows } = await client.query<{ 'QUERY PLAN': { Plan: Record<string, number> }[] }>(`explain (analyze, buffers, format json) ${sql}`, values);
  const plan = rows[0]!['QUERY PLAN'][0]!.Plan;
  return plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!;
}

/** `n` tasks named 'report' due tomorrow, a second apart, at priorities 0 and 1 in turn. */
async function scheduleForTomorrow(n: number): Promise<void> {
  await client.query(
    `insert into "${schema}".tasks (name, payload, priority, run_at)
     select 'report', '{}', g % 2, now() + interval '1 day' + g * interval '1 second' from generate_series(1, $1::int) g`,
    [n],
  );
}

describe('claim_tasks()', () => {
  it('walks the claim index in order with statistics older than a bulk insert, for custom and generic plans alike', async () => {
    // Statistics of an empty table, then 20,000 queued rows: a planner left to itself sorts them all per claim.
    await client.query(`analyze "${schema}".tasks`);
    await client.query(`insert into "${schema}".tasks (name, payload, priority) select 'report', jsonb_build_object('i', g), g % 10 from generate_series(1, 20000) g`);
    const plans = await explainedClaims();
    const claimed: number[] = [];
    for (let call = 0; call < 8; call++) {
      const tasks = await claimTasks(client, schema, request(3));
      claimed.push(...tasks.map((t) => (t.payload as { i: number }).i));
    }
    expect(plans).toHaveLength(8);
    for (const plan of plans) {
      expect(plan).toMatch(/Index Scan using tasks_claim_idx/);
      expect(plan).not.toMatch(/\bSort\b|Seq Scan|Bitmap/);
    }
    // Priority 9 first (i ≡ 9 mod 10), oldest first within it: 9, 19, 29, …
    expect(claimed).toEqual(Array.from({ length: 24 }, (_, k) => 10 * k + 9));
  });

  it('claims only due tasks of the given names and queues, skips rows another transaction holds, and counts the attempt', async () => {
    const [held, due] = await insertTasks(schema, 'report', [{}, {}]);
    await insertTasks(schema, 'report', [{}], { delayMs: 3_600_000 });
    await insertTasks(schema, 'other', [{}]);
    const [mail] = await insertTasks(schema, 'report', [{}], { queue: 'mail', maxAttempts: 2 });

    const other = new pg.Client({ connectionString: databaseUrl(), application_name: 'prefork claim test: lock holder' });
    await other.connect();
    try {
      await other.query('begin');
      await other.query(`select 1 from "${schema}".tasks where id = $1 for update`, [held]);
      const onlyDefault = await claimTasks(client, schema, request(10, ['report'], ['default']));
      expect(onlyDefault.map((t) => t.id)).toEqual([due]);
      expect(onlyDefault[0]).toMatchObject({ name: 'report', attempt: 1, maxAttempts: 7 });
      const anyQueue = await claimTasks(client, schema, request(10));
      expect(anyQueue.map((t) => t.id)).toEqual([mail]);
      expect(anyQueue[0]).toMatchObject({ attempt: 1, maxAttempts: 2 });
      await other.query('rollback');
    } finally {
      await other.end();
    }
    expect((await claimTasks(client, schema, request(10))).map((t) => t.id)).toEqual([held]);
    const { rows } = await client.query(`select id::text, state, attempts, supervisor_id from "${schema}".tasks where state = 'running' order by id`);
    expect(rows).toEqual([held, due, mail].map((id) => ({ id, state: 'running', attempts: 1, supervisor_id: supervisorId })));
  });

  it('finds due tasks without reading the scheduled ones, in claims and in the direct-submission check', async () => {
    // 60,000 tasks due tomorrow at two priorities above the three due now.
    const q = `"${schema}"`;
    await scheduleForTomorrow(60_000);
    await insertTasks(schema, 'report', [{ due: 1 }, { due: 2 }, { due: 3 }], { priority: -1 });
    await client.query(`vacuum analyze ${q}.tasks`);
    // Walking the index entries of the 60,000 scheduled rows reads some 420 pages on PostgreSQL 15 (measured with
    // the single walk this replaced: 420 for each of the three). PostgreSQL 18's skip scan read 6-14 either way.
    expect(await pagesRead(`select ${q}.due_task_waiting(-1)`)).toBeLessThan(40);
    expect(await pagesRead(`select ${q}.due_task_waiting(0)`)).toBeLessThan(40);
    // A claim that finds fewer than it asks for (no task of that name) visits every priority.
    expect(await pagesRead(`select * from ${q}.claim_tasks($1::uuid, array['nothing'], 10, '{}'::jsonb, 3, null)`, [supervisorId])).toBeLessThan(40);

    const { rows: waiting } = await client.query(`select ${q}.due_task_waiting(-1) as low, ${q}.due_task_waiting(0) as high`);
    expect(waiting[0]).toEqual({ low: true, high: false });
    const claimed = await claimTasks(client, schema, request(10));
    expect(claimed.map((t) => t.payload)).toEqual([{ due: 1 }, { due: 2 }, { due: 3 }]);
  });

  it('tells when the next task of the given names and queues is due, across priorities, without reading the rest', async () => {
    const q = `"${schema}"`;
    await scheduleForTomorrow(60_000);
    // The earliest 'report' in the default queue is the one in two hours at the lowest priority; sooner: another
    // name (one hour) and another queue (half an hour).
    await insertTasks(schema, 'report', [{}], { priority: -1, delayMs: 2 * 3_600_000 });
    await insertTasks(schema, 'other', [{}], { delayMs: 3_600_000 });
    await insertTasks(schema, 'report', [{}], { queue: 'mail', delayMs: 1_800_000 });
    await client.query(`vacuum analyze ${q}.tasks`);
    const inMinutes = (at: Date | null) => (at === null ? null : Math.round((at.getTime() - Date.now()) / 60_000));
    expect(inMinutes(await nextRunAt(client, schema, ['report'], ['default']))).toBe(120);
    expect(inMinutes(await nextRunAt(client, schema, ['report'], null))).toBe(30);
    expect(inMinutes(await nextRunAt(client, schema, ['report', 'other'], ['default']))).toBe(60);
    expect(await nextRunAt(client, schema, ['nothing'], null)).toBeNull();
    // min(run_at) over the queued rows of those names, as before, read every one of them: 858 pages here.
    expect(await pagesRead(`select ${q}.next_run_at(array['report'], array['default'])`)).toBeLessThan(40);
  });
});
