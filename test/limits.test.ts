/**
 * Limits per task name across supervisors: `maxRunning` (how many attempts run at once) and `rateLimit` (how
 * many start in any interval), kept in the database so that every supervisor on it obeys them together.
 */
import { describe, expect, it } from 'vitest';
import { defineTask } from '../src/task.js';
import { useClients } from './support/clients.js';
import { query, useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { insertTasks } from './support/tasks.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
const { client } = useClients();

/** The most intervals [start, end) that overlap at one time. */
function mostAtOnce(runs: { start: number; end: number }[]): number {
  const edges = runs.flatMap((r) => [[r.start, 1] as const, [r.end, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (now += d));
  return most;
}

/** `n` supervisors of 2 workers each on `schema`, with the limited tasks, once all are ready. */
async function startSupervisors(schema: string, n: number): Promise<SupervisorProcess[]> {
  const sups = Array.from({ length: n }, () => SupervisorProcess.start(schema, ['--tasks', fixture('limited-tasks.js'), '--workers', '2']));
  await Promise.all(sups.map((s) => s.ready()));
  return sups;
}

describe('task limits across supervisors', () => {
  it('maxRunning: two supervisors with 4 slots run at most 2 at once, sent directly or queued, and go on at once when one ends', async () => {
    const schema = schemaName();
    const sups = await startSupervisors(schema, 2);
    const t0 = Date.now();
    // run() would hand a task straight to a free worker of the local supervisor: a limited task goes through the queue.
    const prefork = client(schema);
    const direct = Array.from({ length: 6 }, () => prefork.run('limited.two', { ms: 300 }, { timeoutMs: 60_000 }));
    await insertTasks(schema, 'limited.two', Array.from({ length: 6 }, () => ({ ms: 300 })));
    await insertTasks(schema, 'free.echo', Array.from({ length: 20 }, (_, i) => ({ i })));
    const results = await Promise.all(direct);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('succeeded'));
    await expect
      .poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where state = 'succeeded'`))[0]!.n, { timeout: 30_000 })
      .toBe(32);
    // 12 tasks of 300 ms two at a time take 1.8 s; a supervisor that waited for its 10 s safety poll instead of the
    // wake a finished limited task sends would take far longer.
    expect(Date.now() - t0).toBeLessThan(9_000);
    const rows = await query<{ result: { start: number; end: number; pid: number } }>(`select result from "${schema}".tasks where name = 'limited.two'`);
    const runs = rows.map((r) => r.result);
    expect(runs).toHaveLength(12);
    expect(mostAtOnce(runs)).toBe(2);
    // status lists the limits the supervisors keep, with the database's counts.
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as { limits: unknown[] };
    expect(status.limits).toEqual([
      { name: 'limited.rate', maxRunning: null, rateLimit: { count: 3, intervalMs: 1_000 }, running: 0, queued: 0, startedInWindow: 0 },
      { name: 'limited.two', maxRunning: 2, rateLimit: null, running: 0, queued: 0, startedInWindow: null },
    ]);
    expect((await runCli(['status'], { schema })).stdout).toContain(
      'limit limited.rate: running 0, started 0 of 3 in the last 1000 ms, queued 0\nlimit limited.two: running 0 of 2, queued 0\n',
    );
    await Promise.all(sups.map((s) => s.stop()));
  });

  it('rateLimit: at most 3 starts in any second across two supervisors; the next start comes when the window frees', async () => {
    const schema = schemaName();
    const sups = await startSupervisors(schema, 2);
    // The window is kept in the database: the claim times of the name's last 3 starts, one row per name, updated
    // by each claim. A trigger of the test's own logs the times each update adds, so every claim is read at the
    // database's time. (A task's started_at is its real start, which follows its claim by however long the
    // dispatch took; reading the window every 25 ms instead missed a claim on a loaded CI machine.)
    await query(`create table "${schema}".test_claims (at timestamptz not null)`);
    await query(`create function "${schema}".test_log_claims() returns trigger language plpgsql as $$
      begin
        insert into "${schema}".test_claims (at)
          select s from unnest(new.starts) s except all select s from unnest(old.starts) s;
        return null;
      end $$`);
    await query(`create trigger test_log_claims after update on "${schema}".task_limits for each row execute function "${schema}".test_log_claims()`);
    const t0 = Date.now();
    await insertTasks(schema, 'limited.rate', Array.from({ length: 10 }, (_, i) => ({ i })));
    await expect
      .poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where state = 'succeeded'`))[0]!.n, { timeout: 30_000 })
      .toBe(10);
    // 10 starts at 3 a second: the last in the fourth second. Waiting for the safety poll would take 10 s.
    expect(Date.now() - t0).toBeLessThan(8_000);
    const at = (await query<{ ms: number }>(`select extract(epoch from at)::float8 * 1000 as ms from "${schema}".test_claims order by at`)).map((r) => Number(r.ms));
    expect(at).toHaveLength(10);
    for (let i = 3; i < at.length; i++) expect(at[i]! - at[i - 3]!, `starts ${i - 3} and ${i} within a second`).toBeGreaterThanOrEqual(1_000);
    // And no slower than the window allows: each start waited for the one three before it, by a second and a little.
    expect(at.at(-1)! - at[0]!).toBeLessThan(3 * 1_000 + 1_500);
    // Every task ran after its claim, once: no start outside the window.
    const [{ n }] = (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where attempts = 1 and started_at >= created_at`)) as [{ n: number }];
    expect(n).toBe(10);
    await Promise.all(sups.map((s) => s.stop()));
  });

  it('a limited task does not wait behind a long queue of unlimited ones queued before it', async () => {
    const schema = schemaName();
    const sups = await startSupervisors(schema, 1);
    // About 2 s of work for the two workers, queued first; then two limited tasks.
    await insertTasks(schema, 'prefork.sleep', Array.from({ length: 200 }, () => ({ ms: 20 })));
    await insertTasks(schema, 'limited.two', [{ ms: 10 }, { ms: 10 }]);
    await expect
      .poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where state = 'succeeded'`))[0]!.n, { timeout: 30_000 })
      .toBe(202);
    const [order] = await query<{ limited_done: Date; sleeps_done: Date }>(
      `select max(finished_at) filter (where name = 'limited.two') as limited_done, max(finished_at) filter (where name = 'prefork.sleep') as sleeps_done
         from "${schema}".tasks`,
    );
    // Claimed for the first free slots, not after the 200 tasks ahead of them in the queue.
    expect(order!.sleeps_done.getTime() - order!.limited_done.getTime()).toBeGreaterThan(1_000);
    await sups[0]!.stop();
  });

  it('defineTask refuses limits that are not whole numbers in range', () => {
    const run = () => null;
    const refused = (options: object) => {
      try {
        defineTask({ ...options, run } as Parameters<typeof defineTask>[0]);
      } catch (error) {
        return (error as { code?: string; message: string }).code + ' ' + (error as Error).message;
      }
      return 'accepted';
    };
    expect(refused({ maxRunning: 0 })).toBe('INVALID_OPTION defineTask: maxRunning must be a whole number from 1 to 1000000 (got 0)');
    expect(refused({ maxRunning: 1.5 })).toMatch(/^INVALID_OPTION defineTask: maxRunning must be a whole number/);
    expect(refused({ rateLimit: 10 })).toBe('INVALID_OPTION defineTask: rateLimit must be { count, intervalMs }');
    expect(refused({ rateLimit: { count: 10 } })).toBe('INVALID_OPTION defineTask: rateLimit must be { count, intervalMs }');
    expect(refused({ rateLimit: { count: 0, intervalMs: 1000 } })).toMatch(/^INVALID_OPTION defineTask: rateLimit.count must be a whole number from 1 to 10000/);
    expect(refused({ rateLimit: { count: 5, intervalMs: -1 } })).toMatch(/^INVALID_OPTION defineTask: rateLimit.intervalMs must be a whole number of milliseconds/);
    expect(refused({ maxRunning: 1, rateLimit: { count: 5, intervalMs: 60_000 } })).toBe('accepted');
  });
});
