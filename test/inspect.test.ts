/** `prefork inspect`: a task's attempts and where it runs, a worker's tasks and their backends in pg_stat_activity. */
import { describe, expect, it } from 'vitest';
import { parseTarget } from '../src/cli/commands/inspect.js';
import { createQueue, query, useTestSchema } from './support/database.js';
import { insertTasks } from './support/tasks.js';
import { runCli, startWithFixtures, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

interface Backend {
  pid: number;
  applicationName: string;
  state: string;
  waitEventType: string | null;
  waitEvent: string | null;
  query: string;
  queryMs: number;
}

interface TaskJson {
  id: string;
  status: string;
  payload: unknown;
  result: unknown;
  attempts: number;
  history: { attempt: number; outcome: string; workerPid: number; supervisorId: string; startedAt: string; finishedAt: string; durationMs: number; error: { name: string; message: string; stack: string | null } | null }[];
  running: { supervisor: { id: string; pid: number } | null; worker: { id: number; pid: number } | null; runningMs: number; backend: Backend | null } | null;
}

interface WorkerJson {
  supervisor: { id: string; pid: number };
  worker: { id: number; pid: number; state: string };
  current: { taskId: string; name: string; attempt: number; runningMs: number; backendPid: number | null; backend: Backend | null }[];
}

async function inspect<T>(schema: string, args: string[]): Promise<T> {
  const r = await runCli(['inspect', ...args, '--json'], { schema });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('prefork inspect', () => {
  it('shows a task sleeping in the database: where it runs, its backend waiting on PgSleep, then its history', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const sent = await runCli(['send', 'fixture.dbSleep', '{"seconds": 6}', '--max-attempts', '1'], { schema });
    const id = sent.stdout.trim();

    // Running: the supervisor's snapshot names the worker, pg_stat_activity shows the sleep.
    let task!: TaskJson;
    await expect
      .poll(async () => {
        task = await inspect<TaskJson>(schema, ['task', id]);
        return task.running?.worker && task.running.backend?.waitEvent;
      })
      .toBe('PgSleep');
    const running = task.running!;
    expect(task.status).toBe('running');
    expect(running.supervisor!.pid).toBe(sup.pid);
    expect(sup.workerPids()).toContain(running.worker!.pid);
    expect(running.backend).toMatchObject({ applicationName: `prefork:${schema} w${running.worker!.id} t${id}`, state: 'active', waitEventType: 'Timeout', waitEvent: 'PgSleep' });
    expect(running.backend!.query).toContain('pg_sleep');
    // The run time is now's, not the snapshot's (up to a heartbeat old): never behind the query the task started.
    await new Promise((r) => setTimeout(r, 1_200));
    const later = (await inspect<TaskJson>(schema, ['task', id])).running!;
    expect(later.runningMs).toBeGreaterThanOrEqual(later.backend!.queryMs - 100);

    const byId = await runCli(['inspect', 'worker', String(running.worker!.id)], { schema });
    expect(byId.code, byId.stderr).toBe(0);
    expect(byId.stdout).toContain(`worker ${running.worker!.id} pid ${running.worker!.pid} of supervisor ${running.supervisor!.id} pid ${sup.pid}`);
    expect(byId.stdout).toMatch(new RegExp(`task ${id} fixture\\.dbSleep attempt 1, running for `));
    expect(byId.stdout).toMatch(/backend \d+ \(prefork:\S+ w\d+ t\d+\): active, waiting on Timeout:PgSleep, query for /);
    expect(byId.stdout).toMatch(/query: select pg_sleep\(\$1\)/);

    const byPid = await inspect<WorkerJson>(schema, ['worker', `pid:${running.worker!.pid}`]);
    expect(byPid.worker).toMatchObject({ id: running.worker!.id, pid: running.worker!.pid });
    expect(byPid.current).toHaveLength(1);
    expect(byPid.current[0]).toMatchObject({ taskId: id, name: 'fixture.dbSleep', attempt: 1, backendPid: running.backend!.pid });
    expect(byPid.current[0]!.backend).toMatchObject({ pid: running.backend!.pid, waitEventType: 'Timeout', waitEvent: 'PgSleep', state: 'active' });
    expect(byPid.current[0]!.backend!.query).toContain('pg_sleep');
    expect(byPid.current[0]!.backend!.queryMs).toBeGreaterThanOrEqual(0);

    const text = await runCli(['inspect', 'task', id], { schema });
    expect(text.stdout).toMatch(new RegExp(`^task ${id} fixture\\.dbSleep \\(queue default, priority 0\\): running, attempt 1 of 1\\n`));
    expect(text.stdout).toContain(`running on supervisor ${running.supervisor!.id} pid ${sup.pid}`);
    expect(text.stdout).toContain('waiting on Timeout:PgSleep');

    // Done: one attempt in the history, by that worker of that supervisor.
    await expect.poll(async () => (await inspect<TaskJson>(schema, [id])).status, { timeout: 20_000 }).toBe('succeeded');
    const done = await inspect<TaskJson>(schema, ['task', id]);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1, payload: { seconds: 6 }, result: { slept: 6 }, running: null });
    expect(done.history).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'succeeded', workerPid: running.worker!.pid, supervisorId: running.supervisor!.id, error: null }),
    ]);
    expect(done.history[0]!.durationMs).toBeGreaterThanOrEqual(6000);
    const doneText = await runCli(['inspect', id], { schema });
    expect(doneText.stdout).toMatch(new RegExp(`#1 succeeded worker pid ${running.worker!.pid}, supervisor ${running.supervisor!.id}, \\S+ → \\S+ \\(6\\.\\d s\\)`));
    expect(doneText.stdout).toContain('result: {"slept":6,');

    // What a worker runs comes from the supervisor's snapshot, published every heartbeat (1 s): it may still
    // show the task for up to a heartbeat after the task's row says succeeded.
    await expect
      .poll(async () => (await runCli(['inspect', 'worker', String(running.worker!.id)], { schema })).stdout, { timeout: 5_000 })
      .toContain('idle: no task running');
    await sup.stop();
  });

  it('shows every attempt of a retried task with its error', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const sent = await runCli(['send', 'fixture.failOnce', '--wait', '--json'], { schema });
    expect(sent.code, sent.stderr).toBe(0);
    const failedId = (JSON.parse((await runCli(['send', 'fixture.fail', '--wait', '--json'], { schema })).stdout) as { id: string }).id;
    const retried = await inspect<TaskJson>(schema, [(JSON.parse(sent.stdout) as { id: string }).id]);
    expect(retried.history.map((h) => [h.attempt, h.outcome, h.error?.message ?? null])).toEqual([
      [1, 'retried', 'transient trouble'],
      [2, 'succeeded', null],
    ]);
    expect(retried.history[0]!.error!.stack).toContain('transient trouble');

    const failed = await runCli(['inspect', failedId], { schema });
    expect(failed.code).toBe(0);
    expect(failed.stdout).toMatch(/^task \d+ fixture\.fail \(queue default, priority 0\): failed, attempt 1 of 1\n/);
    expect(failed.stdout).toMatch(/#1 failed +worker pid \d+, supervisor \S+, .*\n +Error: the report could not be built\n +at /);
    await sup.stop();
  });

  it('records the start of a task claimed ahead when its worker started it, not when it was claimed', async () => {
    const schema = schemaName();
    await createQueue(schema);
    // Both are due before the start: its first claim takes both, and the echo waits behind the sleep.
    const [slow] = await insertTasks(schema, 'fixture.hold', [{ ms: 800 }]);
    const [ahead] = await insertTasks(schema, 'prefork.echo', [{ n: 1 }]);
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    await expect
      .poll(async () => (await query<{ state: string }>(`select state from "${schema}".tasks order by id`)).map((r) => r.state), { timeout: 20_000 })
      .toEqual(['succeeded', 'succeeded']);
    const first = await inspect<TaskJson>(schema, ['task', slow!]);
    const second = await inspect<TaskJson>(schema, ['task', ahead!]);
    expect(first.history.map((h) => h.outcome)).toEqual(['succeeded']);
    expect(second.history.map((h) => h.outcome)).toEqual(['succeeded']);
    // The echo started once the sleep had ended, and ran for a moment, not for the sleep's 800 ms.
    expect(Date.parse(second.history[0]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(first.history[0]!.startedAt) + 700);
    expect(second.history[0]!.durationMs).toBeLessThan(400);
    await sup.stop();
  });

  it('exits 2 for a malformed id, 1 for an unknown task or worker, 3 when no supervisor runs', async () => {
    const schema = schemaName();
    const run = (...args: string[]) => runCli(['inspect', ...args], { schema });
    // A schema nothing ever ran or was sent in (a --schema typo): said, and not created.
    expect(await run('1')).toEqual({
      code: 3,
      stdout: '',
      stderr: `prefork: error: no prefork queue in schema "${schema}" of this database: nothing was ever started or sent there (prefork start --schema ${schema} creates it)\n`,
    });
    expect(await query(`select count(*)::int as n from pg_namespace where nspname = $1`, [schema])).toEqual([{ n: 0 }]);
    await createQueue(schema);
    expect(await run('task', 'abc')).toEqual({ code: 2, stdout: '', stderr: 'prefork: error: invalid task id "abc": a task id is a positive whole number\n' });
    // A positive whole number past bigint (2^63 - 1), bare or not: out of range, not "not a whole number".
    const tooLarge = 'prefork: error: invalid task id "9223372036854775808": it is out of range (task ids go up to 9223372036854775807)\n';
    expect(await run('task', '9223372036854775808')).toEqual({ code: 2, stdout: '', stderr: tooLarge });
    expect(await run('9223372036854775808')).toEqual({ code: 2, stdout: '', stderr: tooLarge });
    expect(await run('9223372036854775807')).toEqual({ code: 1, stdout: '', stderr: 'prefork: error: no task 9223372036854775807\n' });
    expect(await run('worker', 'pid:x')).toMatchObject({ code: 2, stderr: 'prefork: error: invalid worker "pid:x": give the worker id (a positive whole number, as status shows it) or pid:N\n' });
    expect(await run('supervisor')).toMatchObject({ code: 2, stderr: 'prefork: error: inspect what? "supervisor" is neither task, worker nor a task id\n' });
    expect(await run('999999')).toEqual({ code: 1, stdout: '', stderr: 'prefork: error: no task 999999\n' });
    expect(await run('worker', '1')).toEqual({ code: 3, stdout: '', stderr: 'prefork: error: no supervisor is running (start one with: prefork start)\n' });

    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const [pid] = sup.workerPids();
    expect(await run('worker', '7')).toMatchObject({ code: 1, stderr: expect.stringMatching(new RegExp(`^prefork: error: no worker 7 in the running supervisors; workers: 1 \\(pid ${pid}\\) in supervisor \\S+\\n$`)) });
    expect(await run('worker', 'pid:1')).toMatchObject({ code: 1, stderr: expect.stringContaining('no worker pid 1 in the running supervisors') });
    expect(await run('worker', '1', '--supervisor', 'ffffffff')).toMatchObject({ code: 1, stderr: expect.stringContaining('no running supervisor ffffffff') });
    expect((await run('worker', '1', '--supervisor', (await inspect<WorkerJson>(schema, ['worker', '1'])).supervisor.id.slice(0, 8))).code).toBe(0);
    await sup.stop();
  });
});

describe('inspect arguments', () => {
  it('reads task <id>, a bare task id, worker <id> and worker pid:N', () => {
    expect(parseTarget('task', '42')).toEqual({ kind: 'task', id: '42' });
    expect(parseTarget('42', undefined)).toEqual({ kind: 'task', id: '42' });
    expect(parseTarget('worker', '3')).toEqual({ kind: 'worker', ref: { id: 3 } });
    expect(parseTarget('worker', 'pid:1234')).toEqual({ kind: 'worker', ref: { pid: 1234 } });
  });

  it.each([
    [['task', undefined], 'inspect task: give the task id, e.g. prefork inspect task 42'],
    [['task', '0'], 'invalid task id "0": a task id is a positive whole number'],
    [['task', '-1'], 'invalid task id "-1": a task id is a positive whole number'],
    [['task', '99999999999999999999'], 'invalid task id "99999999999999999999": it is out of range (task ids go up to 9223372036854775807)'],
    [['42', '7'], 'inspect 42: give only the task id (or: inspect task 42)'],
    [['worker', undefined], 'inspect worker: give the worker id or pid:N, e.g. prefork inspect worker 3'],
    [['worker', 'three'], 'invalid worker "three": give the worker id (a positive whole number, as status shows it) or pid:N'],
    [['tasks', '1'], 'inspect what? "tasks" is neither task, worker nor a task id'],
  ] as [[string, string | undefined], string][])('%j: %s', ([what, id], message) => {
    expect(() => parseTarget(what, id)).toThrow(message);
  });
});
