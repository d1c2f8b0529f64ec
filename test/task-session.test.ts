/** Per-task session settings and ctx.transaction, through the built CLI and real workers. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defineTask } from '../src/task.js';
import { query, useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { taskModuleFile } from './support/tasks.js';

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
      // Named by its class: pg names every error from the server 'error'.
      error: { name: 'DatabaseError', code: '57014', message: 'canceling statement due to statement timeout' },
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

  it("a task module's own kysely is another copy than ctx.db's: its helpers and sql work in ctx.db's queries, instanceof does not", async () => {
    // The worker loads kysely as one file (dist/db/kysely-bundle.js); `import 'kysely'` loads the package's own.
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('db-tasks.js')]);
    await sup.ready();
    const ownKysely = await sendJson(schema, ['db.ownKysely']);
    expect(ownKysely.code, ownKysely.stderr).toBe(0);
    expect(ownKysely.view.result).toEqual({ list: [{ n: 1 }, { n: 2 }, { n: 3 }], isTransaction: false, inTransaction: true, instanceOfOwnKysely: false });
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

  it('defineTask refuses a key it does not know, naming it and the options it takes, and takes every option the README lists', () => {
    const run = () => null;
    const options = 'maxAttempts, backoff, softTimeoutMs, hardTimeoutMs, statementTimeoutMs, lockTimeoutMs, idleInTransactionTimeoutMs, schedule, maxRunning, rateLimit, run';
    const refused = (definition: object) => {
      try {
        defineTask(definition as Parameters<typeof defineTask>[0]);
      } catch (error) {
        return `${(error as { code?: string }).code} ${(error as Error).message}`;
      }
      return 'accepted';
    };
    // A typo would otherwise drop the limit it meant to set.
    expect(refused({ hardTimeout: 5000, run })).toBe(`INVALID_OPTION defineTask: unknown option "hardTimeout" (options: ${options})`);
    expect(refused({ unknownOpt: 5, run })).toBe(`INVALID_OPTION defineTask: unknown option "unknownOpt" (options: ${options})`);
    expect(refused({ backoff: { type: 'exponential', base: 10 }, run })).toBe(
      `INVALID_OPTION defineTask: backoff { type: 'exponential' }: unknown option "base" (options: type, baseMs, maxMs)`,
    );
    expect(refused({ backoff: { type: 'none', delayMs: 10 }, run })).toBe(`INVALID_OPTION defineTask: backoff { type: 'none' }: unknown option "delayMs" (options: type)`);
    expect(refused({ rateLimit: { count: 1, intervalMs: 1000, burst: 2 }, run })).toBe(
      'INVALID_OPTION defineTask: rateLimit: unknown option "burst" (options: count, intervalMs)',
    );
    expect(refused({ schedule: { cron: '@daily', tz: 'UTC' }, run })).toBe('INVALID_OPTION defineTask: schedule: unknown option "tz" (options: cron, payload, timeZone)');

    // Every option of the README's table, at once.
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('Task options (all optional) in `defineTask({ ... })`:')).split('\n\n')[1]!;
    const documented = [...table.matchAll(/^\| (.+?) \|/gm)].flatMap(([, cell]) => [...cell!.matchAll(/`(\w+)`/g)].map(([, key]) => key!));
    const valid: Record<string, unknown> = {
      maxAttempts: 2,
      backoff: { type: 'exponential', baseMs: 10, maxMs: 100 },
      softTimeoutMs: 10,
      hardTimeoutMs: 20,
      statementTimeoutMs: 10,
      lockTimeoutMs: 10,
      idleInTransactionTimeoutMs: 10,
      schedule: { cron: '@daily', payload: { a: 1 }, timeZone: 'Europe/Berlin' },
      maxRunning: 1,
      rateLimit: { count: 1, intervalMs: 1000 },
    };
    expect(documented.sort()).toEqual(Object.keys(valid).sort());
    expect(refused({ ...valid, run })).toBe('accepted');
    expect(refused({ backoff: { type: 'fixed', delayMs: 5 }, schedule: '@hourly', run })).toBe('accepted');
  });

  it('ctx.transaction and ctx.send refuse an unknown option or a bad value with INVALID_OPTION before anything runs; null options are none', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('db-tasks.js')]);
    await sup.ready();
    const r = await sendJson(schema, ['db.badOptions']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.view.result).toEqual({
      transaction: [
        'INVALID_OPTION: transaction: unknown option "isolation" (options: retries, isolationLevel, accessMode, signal, baseDelayMs, maxDelayMs, onRetry)',
        "INVALID_OPTION: transaction: isolationLevel must be one of 'read uncommitted', 'read committed', 'repeatable read', 'serializable' (got \"serialisable\")",
        'INVALID_OPTION: transaction: retries must be a whole number from 0 to 1000 (got "x")',
        'INVALID_OPTION: transaction: retries must be a whole number from 0 to 1000 (got NaN)',
        'INVALID_OPTION: transaction: options must be an object (got "fast")',
      ],
      sendRefused: [
        'INVALID_OPTION: db must be a pg client or pool, or a Kysely instance or transaction',
        expect.stringMatching(/^INVALID_OPTION: unknown option "delay" \(options: db, queue, /),
      ],
      ranBeforeNull: 0,
      nullTransaction: 'ran',
      nullValues: 'ran',
      nullSend: 'string',
    });
    // Only the send with null options queued a task.
    expect(await query(`select name, payload from "${schema}".tasks where name = 'prefork.echo'`)).toEqual([{ name: 'prefork.echo', payload: { n: 1 } }]);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('ctx.transaction commits on the task connection, after a rerun logged with one attempt key', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('db-tasks.js')]);
    await sup.ready();
    await query(`create table "${schema}".marks (id int primary key)`);
    const r = await sendJson(schema, ['db.insertInTransaction', JSON.stringify({ table: `${schema}.marks`, id: 7, failFirst: true })]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.view.result).toEqual({ attempt: 2 });
    expect(await query(`select id from "${schema}".marks`)).toEqual([{ id: 7 }]);
    // The raw line: JSON.parse keeps one of two equal keys, and a log parser may keep the other.
    const line = sup.stdout().split('\n').find((l) => l.includes('"event":"db_transaction_retry"'));
    expect(line?.match(/"attempt":/g)).toHaveLength(1);
    expect(JSON.parse(line!)).toMatchObject({ attempt: 1, transactionAttempt: 1, code: '40001' });
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });
});

/**
 * Code a task leaves behind (a timer here) uses its ctx 200 ms after the task returned, having never touched the
 * database before: each use is logged with how it ended.
 */
const lateUseModule = `const late = (ctx, use, f) =>
  setTimeout(() => f().then(
    () => ctx.log.info({ event: 'late_use', use, outcome: 'ran' }, 'late use ran'),
    (e) => ctx.log.info({ event: 'late_use', use, outcome: e.code ?? e.message }, 'late use failed'),
  ), 200);
export default {
  'late.use': (_payload, ctx) => {
    late(ctx, 'query', () => ctx.sql\`select 'late db use'\`.execute(ctx.db));
    late(ctx, 'connection', () => ctx.connection());
    late(ctx, 'transaction', () => ctx.transaction((trx) => ctx.sql\`select 1\`.execute(trx)));
    late(ctx, 'send', () => ctx.send('prefork.echo', { late: true }));
    return 'done';
  },
  'db.one': async (_payload, ctx) => (await ctx.sql\`select 1 as one\`.execute(ctx.db)).rows[0],
};
`;

describe("a task's ctx used after the task settled", () => {
  /** Runs late.use, then waits until its four late uses have ended; returns the task's id. */
  async function runLateUse(schema: string, sup: SupervisorProcess): Promise<string> {
    const r = await sendJson(schema, ['late.use']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.view).toMatchObject({ status: 'succeeded', result: 'done' });
    await sup.waitForEvent('late_use', 4);
    return r.view.id as string;
  }

  /** How each late use ended: as a late use of a connection the task had opened does. */
  function expectClosedEverywhere(sup: SupervisorProcess): void {
    const uses = Object.fromEntries(sup.events('late_use').map((l) => [l.use, l.outcome]));
    expect(uses).toEqual({ query: 'CONNECTION_CLOSED', connection: 'CONNECTION_CLOSED', transaction: 'CONNECTION_CLOSED', send: 'CONNECTION_CLOSED' });
  }

  it('fails with CONNECTION_CLOSED: no session is left open for the task, nothing is queued', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', taskModuleFile(lateUseModule).path]);
    await sup.ready();
    const id = await runLateUse(schema, sup);
    expect(await query(`select application_name, state from pg_stat_activity where application_name like $1`, [`prefork:${schema} w% t${id}`])).toEqual([]);
    expect(await query(`select name from "${schema}".tasks`)).toEqual([{ name: 'late.use' }]);
    expectClosedEverywhere(sup);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('takes no slot of an enforced connection budget: a later database task still runs', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '-c', '2', '--max-db-connections', '1', '--tasks', taskModuleFile(lateUseModule).path]);
    await sup.ready();
    await runLateUse(schema, sup);
    const r = await sendJson(schema, ['db.one', '--timeout', '10000']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.view.result).toEqual({ one: 1 });
    expectClosedEverywhere(sup);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });
});
