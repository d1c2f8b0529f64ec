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

  it('defineTask refuses a timeout that is not a whole number of ms, with an exact message', () => {
    const run = () => null;
    expect(() => defineTask({ statementTimeoutMs: -1, run })).toThrow('defineTask: statementTimeoutMs must be a whole number of milliseconds, 0 or more (got -1)');
    expect(() => defineTask({ lockTimeoutMs: 1.5, run })).toThrow('defineTask: lockTimeoutMs must be a whole number of milliseconds, 0 or more (got 1.5)');
    expect(() => defineTask({ idleInTransactionTimeoutMs: '5' as never, run })).toThrow(
      'defineTask: idleInTransactionTimeoutMs must be a whole number of milliseconds, 0 or more (got 5)',
    );
    expect(defineTask({ statementTimeoutMs: 0, lockTimeoutMs: 10, run })).toMatchObject({ statementTimeoutMs: 0, lockTimeoutMs: 10 });
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
