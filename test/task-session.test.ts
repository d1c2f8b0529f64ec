/** Per-task session settings and ctx.transaction, through the built CLI and real workers. */
import { describe, expect, it } from 'vitest';
import { defineTask } from '../src/task.js';
import { query, useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

async function sendJson(schema: string, args: string[]) {
  const r = await runCli(['send', ...args, '--wait', '--json'], { schema });
  return { code: r.code, stderr: r.stderr, view: r.stdout ? JSON.parse(r.stdout) : null };
}

describe('task session settings', () => {
  it("a query past the task's statement timeout fails with 57014; the next task on the same worker succeeds", async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('db-tasks.js')]);
    await sup.ready();
    const slow = await sendJson(schema, ['db.slowQuery', '{"seconds":5}']);
    expect(slow.code).toBe(1);
    expect(slow.view).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { code: '57014', message: 'canceling statement due to statement timeout' },
    });
    expect(Date.parse(slow.view.finishedAt) - Date.parse(slow.view.startedAt)).toBeLessThan(2_000);
    expect(slow.stderr).toContain('statement timeout');

    const next = await sendJson(schema, ['db.settings']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.view.result.workerPid).toBe(sup.workerPids()[0]);
    // The worker's defaults: statement timeout 5 min, lock timeout 1 min, idle in transaction 1 min.
    expect(next.view.result).toMatchObject({ statementTimeout: '5min', lockTimeout: '1min', idleInTransactionTimeout: '1min' });

    const own = await sendJson(schema, ['db.ownSettings']);
    expect(own.code, own.stderr).toBe(0);
    expect(own.view.result).toMatchObject({ statementTimeout: '4s', lockTimeout: '1500ms', idleInTransactionTimeout: '0' });
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('defineTask refuses an option it cannot honour, with an exact message', () => {
    const run = () => null;
    const ms = (key: string, got: string, min = 0) => `defineTask: ${key} must be a whole number of milliseconds from ${min} to 2147483647 (got ${got})`;
    expect(() => defineTask({ statementTimeoutMs: -1, run })).toThrow(ms('statementTimeoutMs', '-1'));
    expect(() => defineTask({ lockTimeoutMs: 1.5, run })).toThrow(ms('lockTimeoutMs', '1.5'));
    expect(() => defineTask({ idleInTransactionTimeoutMs: '5' as never, run })).toThrow(ms('idleInTransactionTimeoutMs', '5'));
    // Past what a Node timer holds, a limit would fire after 1 ms: the task killed as it starts.
    expect(() => defineTask({ hardTimeoutMs: 3_000_000_000, run })).toThrow(ms('hardTimeoutMs', '3000000000', 1));
    expect(() => defineTask({ softTimeoutMs: 0, run })).toThrow(ms('softTimeoutMs', '0', 1));
    expect(() => defineTask({ maxAttempts: 0, run })).toThrow('defineTask: maxAttempts must be a whole number from 1 to 1000000 (got 0)');
    expect(() => defineTask({ backoff: { type: 'linear' } as never, run })).toThrow("defineTask: backoff.type must be 'exponential', 'fixed' or 'none' (got linear)");
    expect(() => defineTask({ backoff: { type: 'fixed' } as never, run })).toThrow("defineTask: backoff { type: 'fixed' } needs delayMs");
    expect(() => defineTask({ run: 'not a function' as never })).toThrow('defineTask: run must be a function');
    expect(defineTask({ statementTimeoutMs: 0, lockTimeoutMs: 10, maxAttempts: 5, backoff: { type: 'fixed', delayMs: 90 * 86_400_000 }, run })).toMatchObject({
      statementTimeoutMs: 0,
      lockTimeoutMs: 10,
      maxAttempts: 5,
    });
  });

  it('ctx.transaction commits on the task connection', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('db-tasks.js')]);
    await sup.ready();
    await query(`create table "${schema}".marks (id int primary key)`);
    const r = await sendJson(schema, ['db.insertInTransaction', JSON.stringify({ table: `${schema}.marks`, id: 7 })]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.view.result).toEqual({ attempt: 1 });
    expect(await query(`select id from "${schema}".marks`)).toEqual([{ id: 7 }]);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });
});
