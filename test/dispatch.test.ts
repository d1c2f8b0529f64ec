/**
 * How tasks reach the workers: claims that grow with the throughput, short tasks sent ahead in a queue on
 * each worker, and what happens to such queued tasks when a task turns out slow or the supervisor stops.
 */
import { describe, expect, it } from 'vitest';
import { query, useTestSchema } from './support/database.js';
import { runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { countByState, waitForFinal } from './support/tasks.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

describe('dispatch', () => {
  it('claims many short tasks per statement, and hands tasks queued behind a slow one to an idle worker', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--log-level', 'debug']);
    await sup.ready();
    // One statement, so ids give the claim order: 400 short tasks, one that sleeps 3 s, 200 short ones.
    await query(
      `insert into "${schema}".tasks (name, payload)
       select case when g = 401 then 'prefork.sleep' else 'prefork.echo' end,
              case when g = 401 then '{"ms": 3000}'::jsonb else jsonb_build_object('i', g) end
         from generate_series(1, 601) g order by g`,
    );
    await waitForFinal(schema, 601);
    expect(await countByState(schema)).toEqual({ succeeded: 601 });
    const claims = sup.events('tasks_claimed').filter((e) => (e.claimed as number) > 0);
    expect(claims.reduce((n, e) => n + (e.claimed as number), 0)).toBe(601);
    expect(claims.length).toBeLessThan(60);
    // No short task waited for the slow one, although short tasks are queued on the workers ahead of time.
    const [ends] = await query<{ slowEnd: Date; lastShortEnd: Date; attempts: number }>(
      `select (select finished_at from "${schema}".tasks where name = 'prefork.sleep') as "slowEnd",
              (select max(finished_at) from "${schema}".tasks where name = 'prefork.echo') as "lastShortEnd",
              (select max(attempts) from "${schema}".tasks)::int as attempts`,
    );
    expect(ends!.lastShortEnd.getTime()).toBeLessThan(ends!.slowEnd.getTime());
    expect(ends!.attempts).toBe(1);
    await sup.stop();
  });

  it('a stream of 20 ms tasks: claims grow with the throughput, and successes close together are recorded together', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--log-level', 'debug']);
    await sup.ready();
    await query(`insert into "${schema}".tasks (name, payload) select 'prefork.sleep', '{"ms": 20}'::jsonb from generate_series(1, 200)`);
    await waitForFinal(schema, 200);
    expect(await countByState(schema)).toEqual({ succeeded: 200 });
    // Two workers finish a task every 10 ms between them: claimed two at a time, that would be 100 claims; written
    // one at a time, 200 outcome statements. A success waits up to half its run time for the other worker's. Each
    // outcome batch is one transaction: its rows share its time.
    const claims = sup.events('tasks_claimed').filter((e) => (e.claimed as number) > 0);
    expect(claims.reduce((n, e) => n + (e.claimed as number), 0)).toBe(200);
    expect(claims.length).toBeLessThan(25);
    const [r] = await query<{ settles: number }>(`select count(distinct finished_at)::int as settles from "${schema}".tasks`);
    expect(r!.settles).toBeLessThan(150);
    await sup.stop();
  });

  it('stop in a stream of short tasks: what no worker started goes back to the queue, uncounted', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '3']);
    await sup.ready();
    await query(`insert into "${schema}".tasks (name, payload) select 'prefork.echo', jsonb_build_object('i', g) from generate_series(1, 20000) g`);
    await expect.poll(async () => (await countByState(schema)).succeeded ?? 0).toBeGreaterThan(500);
    const stop = await runCli(['stop'], { schema });
    expect(stop.code, stop.stderr).toBe(0);
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    const counts = await countByState(schema);
    expect(Object.keys(counts).sort()).toEqual(['queued', 'succeeded']);
    expect(counts.succeeded! + counts.queued!).toBe(20000);
    const [wrong] = await query<{ queued: number; succeeded: number }>(
      `select count(*) filter (where state = 'queued' and (attempts <> 0 or supervisor_id is not null))::int as queued,
              count(*) filter (where state = 'succeeded' and attempts <> 1)::int as succeeded
         from "${schema}".tasks`,
    );
    expect(wrong).toEqual({ queued: 0, succeeded: 0 });
  });
});
