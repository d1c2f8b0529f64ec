/** prefork 0.1: the whole path, with real forked workers and a real PostgreSQL. */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { admin, databaseUrl, query, taskConnections, useTestSchema } from './support/database.js';
import { migrate } from '../src/db/migrate.js';
import { distIndex, insertTasks, taskModuleFile } from './support/tasks.js';
import { CliSession } from './support/terminal.js';
import { memoryCompactionSupported } from '../src/worker/compact-memory.js';
import { pidScope } from '../src/process-alive.js';
import { childPids, fixture, isAlive, runCli, startWithFixtures, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

interface StatusJson {
  supervisors: { pid: number; workers: { id: number; pid: number; state: string; tasksDone: number; loopLagMs: number | null; current: { taskId: string }[] }[] }[];
  queue: Record<string, number>;
}

async function statusJson(schema: string): Promise<StatusJson> {
  const r = await runCli(['status', '--json'], { schema });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

async function waitForFinalStates(schema: string, total: number, timeout = 60_000): Promise<void> {
  await expect
    .poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where state not in ('queued', 'running')`))[0]!.n, {
      timeout,
      interval: 100,
    })
    .toBe(total);
}

describe('prefork start', () => {
  it('forks 4 workers that each reset the connection cache once, then report ready', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '4']);
    await sup.ready();
    const pids = sup.workerPids();
    expect(pids).toHaveLength(4);
    for (const event of ['worker_process_init', 'db_connection_cache_reset', 'worker_startup_done']) {
      expect(sup.events(event).map((l) => l.pid).sort(), event).toEqual([...pids].sort());
    }
    expect(sup.events('worker_ready').map((l) => l.workerPid).sort()).toEqual([...pids].sort());
    // The import-time connection was in the cache and was closed by the reset; the task module's own hook ran after it.
    for (const reset of sup.events('db_connection_cache_reset')) expect(reset.closed).toBe(1);
    for (const hook of sup.events('fixture_hook_ran')) expect(hook.cachedAfterReset).toBe(0);
    await expect.poll(async () => (await statusJson(schema)).supervisors[0]?.workers.filter((w) => w.state === 'ready').length).toBe(4);
    const status = await statusJson(schema);
    expect(status.supervisors).toHaveLength(1);
    expect(status.supervisors[0]!.pid).toBe(sup.pid);
    expect(status.supervisors[0]!.workers.map((w) => w.pid).sort()).toEqual([...pids].sort());
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  // Node 22 and later: their V8 keeps the young generation start-up grew (Node 20's gives it back by itself).
  it.skipIf(!memoryCompactionSupported())('each idle worker gives back, once, the memory its start-up grew, then serves tasks', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--log-level', 'debug']);
    await sup.ready();
    await sup.waitForEvent('worker_memory_compacted', 2, 15_000);
    const compactions = sup.events('worker_memory_compacted');
    expect(compactions.map((l) => l.pid).sort()).toEqual([...sup.workerPids()].sort());
    for (const c of compactions) expect(c.rssAfterMb).toBeLessThan(c.rssBeforeMb as number);
    const r = await runCli(['send', 'prefork.echo', '{"after":"compaction"}', '--wait'], { schema });
    expect(r.stdout).toBe('{"after":"compaction"}\n');
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('closes connections opened at import time: tasks never use them', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    // Every worker opened one at import; none survives the reset.
    await expect.poll(() => query(`select pid from pg_stat_activity where application_name = $1`, [`import-time:${schema}`])).toEqual([]);
    const r = await runCli(['send', 'fixture.backendPid', '--wait'], { schema });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { backendPid: number; importTimePid: number };
    expect(result.backendPid).not.toBe(result.importTimePid);
    await sup.stop();
  });

  // CI runs this file on Node 20 (no type stripping), 22 and 24 (types stripped by default since 22.18).
  const stripsTypes = Boolean((process.features as { typescript?: unknown }).typescript);
  it(`a TypeScript task module as it is: ${stripsTypes ? 'its workers run its tasks' : 'start stops with one line that says what works instead'}`, async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('ts-tasks.ts')]);
    if (!stripsTypes) {
      expect((await sup.exited).code).toBe(1);
      expect(sup.stderr).toMatch(
        /^prefork: error: a worker could not start: could not load the task module .*ts-tasks\.ts: Node\.js v[\d.]+ does not run TypeScript: compile the task module to JavaScript, run prefork on Node\.js 22\.18 or later \(it strips the types\), or start it with a TypeScript loader \(NODE_OPTIONS='--import tsx'\)\n$/,
      );
      return;
    }
    await sup.ready();
    const r = await runCli(['send', 'ts.greet', '{"name":"ts"}', '--wait'], { schema });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ greeting: 'hello, ts', pid: sup.workerPids()[0] });
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('runs 200 tasks on 200 different connections, spread over the workers, and leaves none open', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '4']);
    await sup.ready();
    await query(`insert into "${schema}".tasks (name, payload) select 'fixture.backendPid', jsonb_build_object('n', i) from generate_series(1, 200) i`);
    await waitForFinalStates(schema, 200);
    const rows = await query<{ state: string; result: { backendPid: number; workerPid: number }; worker_pid: number }>(
      `select state, result, worker_pid from "${schema}".tasks`,
    );
    expect(rows.filter((r) => r.state !== 'succeeded')).toEqual([]);
    expect(new Set(rows.map((r) => r.result.backendPid)).size).toBe(200);
    expect(new Set(rows.map((r) => r.worker_pid)).size).toBeGreaterThan(1);
    expect(rows.every((r) => r.result.workerPid === r.worker_pid)).toBe(true);
    await expect.poll(() => taskConnections(schema)).toEqual([]);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('prefork send', () => {
  it('--queue that no running supervisor claims from (a slip of --queue): sent, with a warning; status shows --queues', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1', '--queues', 'mail']);
    await sup.ready();
    await expect.poll(async () => (await runCli(['status'], { schema })).stdout).toMatch(/: running, 1 worker, queues mail only, started /);
    expect((await statusJson(schema)).supervisors[0]).toMatchObject({ queues: ['mail'] });
    const slip = await runCli(['send', 'prefork.echo', '{}', '--queue', 'mial'], { schema });
    expect(slip.code, slip.stderr).toBe(0);
    expect(slip.stderr).toBe('prefork: warning: no running supervisor that offers "prefork.echo" claims from queue "mial" now (they claim from mail); the task waits queued until one does\n');
    const right = await runCli(['send', 'prefork.echo', '{"to":"mail"}', '--queue', 'mail', '--wait'], { schema });
    expect(right).toEqual({ code: 0, stdout: '{"to":"mail"}\n', stderr: '' });
    await sup.stop();
  });

  it('--wait prints the result; --json prints the whole task', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const plain = await runCli(['send', 'prefork.echo', '{"hi":1}', '--wait'], { schema });
    expect(plain).toEqual({ code: 0, stdout: '{"hi":1}\n', stderr: '' });

    const json = await runCli(['send', 'prefork.echo', '-', '--wait', '--json'], { schema, input: '{"userId": 7}' });
    expect(json.code, json.stderr).toBe(0);
    const view = JSON.parse(json.stdout);
    expect(view).toMatchObject({ task: 'prefork.echo', status: 'succeeded', result: { userId: 7 }, error: null, attempts: 1 });
    expect(sup.workerPids()).toContain(view.workerPid);

    const id = await runCli(['send', 'prefork.echo', '{}'], { schema });
    expect(id.code).toBe(0);
    expect(id.stdout).toMatch(/^\d+\n$/);
    await sup.stop();
  });

  it('reports a failing task with its error and exit 1', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const r = await runCli(['send', 'fixture.fail', '--wait', '--json'], { schema });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      status: 'failed',
      result: null,
      attempts: 1,
      error: { name: 'Error', message: 'the report could not be built', code: null },
    });
    expect(r.stderr).toMatch(/^prefork: task \d+ \(fixture\.fail\) failed after 1 attempt: Error: the report could not be built\n$/);

    const permanent = await runCli(['send', 'fixture.permanent', '--wait', '--json'], { schema });
    expect(permanent.code).toBe(1);
    expect(JSON.parse(permanent.stdout)).toMatchObject({ status: 'failed', attempts: 1, error: { name: 'NonRetryableError' } });

    const retried = await runCli(['send', 'fixture.failOnce', '--wait', '--json'], { schema });
    expect(retried.code, retried.stderr).toBe(0);
    // The first attempt's error is in the history, not the succeeded task's error.
    expect(JSON.parse(retried.stdout)).toMatchObject({ status: 'succeeded', attempts: 2, result: { attempt: 2 }, error: null });
    await sup.stop();
  });

  it('a thrown object that is not an Error keeps its name, code and retryable: false; a getter that throws or a proxy hides only its own field', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`import { defineTask } from '${distIndex}';
const thrower = (value) => defineTask({ maxAttempts: 3, backoff: { type: 'none' }, run: () => { throw value(); } });
export default {
  'throw.plain': thrower(() => ({ name: 'PlainError', message: 'plain obj', code: 'PLAIN', retryable: false, stack: 'PlainError: plain obj\\n    at the thrower' })),
  'throw.noMessage': thrower(() => ({ code: 'NO_MESSAGE', retryable: false })),
  'throw.badGetter': thrower(() => ({ message: 'bad getter', get code() { throw new Error('no code'); }, retryable: false })),
  'throw.proxy': thrower(() => new Proxy({ message: 'proxied', code: 'PROXIED', retryable: false }, { get: (t, k) => { if (k === 'code') throw new Error('no code'); return t[k]; } })),
  'throw.retryable': thrower(() => ({ message: 'try again', code: 'AGAIN', retryable: 'no' })),
};
`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    await sup.ready();
    const run = async (task: string) => {
      const r = await runCli(['send', task, '--wait', '--json'], { schema });
      expect(r.code, r.stderr).toBe(1);
      return JSON.parse(r.stdout) as { status: string; attempts: number; error: unknown };
    };
    expect(await run('throw.plain')).toMatchObject({ status: 'failed', attempts: 1, error: { name: 'PlainError', message: 'plain obj', code: 'PLAIN' } });
    const [plain] = await query<{ stack: string }>(`select error->>'stack' as stack from "${schema}".tasks where name = 'throw.plain'`);
    expect(plain?.stack).toBe('PlainError: plain obj\n    at the thrower');
    expect(await run('throw.noMessage')).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { name: 'Error', message: 'non-error thrown: {"code":"NO_MESSAGE","retryable":false}', code: 'NO_MESSAGE' },
    });
    expect(await run('throw.badGetter')).toMatchObject({ status: 'failed', attempts: 1, error: { message: 'bad getter', code: null } });
    expect(await run('throw.proxy')).toMatchObject({ status: 'failed', attempts: 1, error: { message: 'proxied', code: null } });
    // Only false stops the retries, as for an Error.
    expect(await run('throw.retryable')).toMatchObject({ status: 'failed', attempts: 3, error: { message: 'try again', code: 'AGAIN' } });
    expect(sup.events('worker_crashed')).toEqual([]);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('prefork.sleep fails any payload that is not {"ms": a number of milliseconds} the same way: NonRetryableError, one attempt', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    // Not an object, no ms, an ms that is no number or out of a timer's range: no silent sleep of 0 ms.
    for (const payload of ['"abc"', 'null', '[5]', '{}', '{"ms": "5"}', '{"ms": -5}', '{"ms": 2147483648}']) {
      const r = await runCli(['send', 'prefork.sleep', payload, '--wait', '--json'], { schema });
      expect(r.code, payload).toBe(1);
      expect(JSON.parse(r.stdout), payload).toMatchObject({
        status: 'failed',
        attempts: 1,
        error: { name: 'NonRetryableError', message: 'prefork.sleep expects {"ms": a number of milliseconds from 0 to 2147483647}' },
      });
    }
    expect(await runCli(['send', 'prefork.sleep', '{"ms": 5}', '--wait'], { schema })).toEqual({ code: 0, stdout: '{"sleptMs":5}\n', stderr: '' });
    await sup.stop();
  });

  it('a URL without a user name means the user of this process, also when $USER is unset (as libpq does)', async () => {
    const url = new URL(databaseUrl());
    url.username = '';
    url.password = '';
    const r = await runCli(['status', '--database-url', url.toString(), '--schema', 't_nouser_absent'], { env: { USER: undefined, PGUSER: undefined } });
    expect(r.stderr).not.toContain('no PostgreSQL user name');
    // It reached the server as the OS user: either that role exists (and the schema does not), or it does not.
    expect(r.stderr).toMatch(new RegExp(`no prefork queue in schema "t_nouser_absent"|role "${os.userInfo().username}" does not exist`));
  });

  it('refuses bad input with one line and exit 2, and an unreachable database with exit 3', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const unknown = await runCli(['send', 'report.nope', '{}'], { schema });
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toMatch(/^prefork: error: unknown task "report\.nope": the supervisors know .*fixture\.backendPid.*\n$/);

    const badJson = await runCli(['send', 'prefork.echo', '{"hi":'], { schema });
    expect(badJson.code).toBe(2);
    expect(badJson.stderr.trim().split('\n')).toHaveLength(1);
    expect(badJson.stderr).toMatch(/^prefork: error: the payload is not valid JSON/);

    const badFlag = await runCli(['send', 'prefork.echo', '--timeout', 'soon'], { schema });
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--timeout must be a whole number/);

    // No database configured, and no supervisor running an embedded one in this (empty) directory.
    const emptyDir = await mkdtemp(path.join(os.tmpdir(), 'prefork-no-db-'));
    const noUrl = await runCli(['send', 'prefork.echo', '{}'], { env: { DATABASE_URL: undefined, PREFORK_DATA_DIR: undefined }, cwd: emptyDir });
    await rm(emptyDir, { recursive: true, force: true });
    expect(noUrl.code).toBe(3);
    expect(noUrl.stderr).toBe(
      'prefork: error: no database configured and no prefork supervisor is running here (.prefork/state.json): start one with "npx prefork start", or pass --database-url / set DATABASE_URL\n',
    );

    const down = await runCli(['send', 'prefork.echo', '{}', '--database-url', 'postgres://app:s3cret-pw@127.0.0.1:1/none'], { schema });
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/^prefork: error: cannot use the database at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/none: .*\n$/);
    expect(down.stderr).not.toContain('s3cret-pw');
    // Nothing was queued by the refused sends.
    expect(await query(`select name from "${schema}".tasks`)).toEqual([]);
    await sup.stop();
  });
});

describe('durability and lifecycle', () => {
  it('runs tasks that were sent while no supervisor was running', async () => {
    const schema = schemaName();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['send', 'prefork.echo', JSON.stringify({ i })], { schema });
      expect(r.code, r.stderr).toBe(0);
      ids.push(r.stdout.trim());
    }
    const sup = SupervisorProcess.start(schema, ['--workers', '2']);
    await sup.ready();
    await waitForFinalStates(schema, 3);
    const rows = await query<{ id: string; state: string; result: unknown }>(`select id, state, result from "${schema}".tasks order by id`);
    expect(rows).toEqual(ids.map((id, i) => ({ id, state: 'succeeded', result: { i } })));
    await sup.stop();
  });

  it('a supervisor whose workers are still loading: status says starting, its lease is renewed, send does not warn, stop stops it', async () => {
    const schema = schemaName();
    // Its worker's start-up hook takes a minute: the supervisor stays starting for the whole test.
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('slow-hook-tasks.js')]);
    await sup.waitForEvent('worker_forked');
    const row = async () => (await query<{ id: string; state: string; beat: string }>(`select id, state, heartbeat_at::text as beat from "${schema}".supervisors`))[0];
    await expect.poll(row).toMatchObject({ state: 'starting' });
    const { id, beat: first } = (await row())!;
    const status = await runCli(['status'], { schema });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`supervisor ${id} pid ${sup.pid} on ${os.hostname()}: starting, 1 worker,`);
    expect(status.stdout).toMatch(/^ +1 +\d+  starting /m);
    // Not "no supervisor has ever run on schema": one is on its way.
    const sent = await runCli(['send', 'prefork.echo', '{}'], { schema });
    expect(sent).toMatchObject({ code: 0, stderr: '' });
    await expect.poll(async () => (await row())!.beat).not.toBe(first);
    expect((await row())!.state).toBe('starting');
    const stop = await runCli(['stop'], { schema });
    expect(stop).toMatchObject({ code: 0, stderr: 'prefork: asked 1 supervisor to stop\nprefork: stopped\n' });
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    expect((await row())!.state).toBe('stopped');
  });

  it('stop does not say stopped for a supervisor whose lease ran out while its process lives on (SIGSTOP)', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    sup.kill('SIGSTOP');
    try {
      // The lease (15 s) runs out, then stop waits 10 s more for the process to exit.
      const stop = await runCli(['stop'], { schema });
      expect(stop).toMatchObject({
        code: 1,
        stderr: `prefork: asked 1 supervisor to stop\nprefork: error: supervisor pid ${sup.pid} stopped renewing its lease but has not exited: it may be hung (kill it to stop it)\n`,
      });
    } finally {
      sup.kill('SIGCONT');
    }
    // Woken, it finds the stop it was asked for and exits as usual.
    expect(await sup.exited).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('stop waits for the running task, then the supervisor exits 0 and no worker is left', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const sent = await runCli(['send', 'fixture.dbSleep', '{"seconds": 1.5}'], { schema });
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(1);
    const stop = await runCli(['stop'], { schema });
    expect(stop.code, stop.stderr).toBe(0);
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    const [row] = await query<{ state: string }>(`select state from "${schema}".tasks where id = $1`, [sent.stdout.trim()]);
    expect(row!.state).toBe('succeeded');
    for (const pid of sup.workerPids()) expect(isAlive(pid), `worker ${pid}`).toBe(false);
    const again = await runCli(['stop'], { schema });
    expect(again.code).toBe(3);
    expect(again.stderr).toBe('prefork: error: no supervisor is running on this database\n');
  });

  it('SIGKILL of the primary leaves no worker behind, and the next supervisor finishes its task', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const workers = sup.workerPids();
    const sent = await runCli(['send', 'fixture.dbSleep', '{"seconds": 30}', '--max-attempts', '2'], { schema });
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(1);
    // Published as running (within 0.2 s of its start): its attempt is lost with the primary, and counted.
    await expect.poll(async () => (await statusJson(schema)).supervisors[0]?.workers.flatMap((w) => w.current.map((c) => c.taskId))).toEqual([sent.stdout.trim()]);
    sup.kill('SIGKILL');
    await sup.exited;
    await expect.poll(() => workers.filter(isAlive), { timeout: 10_000 }).toEqual([]);
    // The killed worker's connection dies with it.
    await expect.poll(() => taskConnections(schema), { timeout: 10_000 }).toEqual([]);

    // The next attempt need not sleep as long.
    await query(`update "${schema}".tasks set payload = '{"seconds": 0}' where id = $1`, [sent.stdout.trim()]);
    const next = startWithFixtures(schema, ['--workers', '1']);
    await next.ready();
    await next.waitForEvent('orphans_recovered');
    const waited = await runCli(['send', 'prefork.echo', '{}', '--wait'], { schema });
    expect(waited.code).toBe(0);
    await waitForFinalStates(schema, 2);
    const [row] = await query<{ state: string; attempts: number }>(`select state, attempts from "${schema}".tasks where id = $1`, [sent.stdout.trim()]);
    expect(row).toEqual({ state: 'succeeded', attempts: 2 });
    await next.stop();
  });

  it("the primary's own sessions name its schema in pg_stat_activity", async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const names = await query<{ name: string }>(
      `select distinct application_name as name from pg_stat_activity where application_name in ($1, $2) order by 1`,
      [`prefork listener:${schema}`, `prefork supervisor:${schema}`],
    );
    expect(names.map((r) => r.name)).toEqual([`prefork listener:${schema}`, `prefork supervisor:${schema}`]);
    await sup.stop();
  });

  it("status shows a worker's event loop blocked while it is, not the lag its last heartbeat gave before", async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const sent = await runCli(['send', 'fixture.block', '{"ms": 6000}'], { schema });
    const id = sent.stdout.trim();
    // While the task still blocks it (it is the worker's current task), the lag shown has grown past 2 s.
    await expect
      .poll(
        async () => {
          const [w] = (await statusJson(schema)).supervisors[0]!.workers;
          return w!.current.some((c) => c.taskId === id) && (w!.loopLagMs ?? 0) >= 2_000;
        },
        { timeout: 5_000, interval: 250 },
      )
      .toBe(true);
    await sup.stop();
  });

  it("SIGKILL of the primary while a task blocks its worker: the primary's guard kills that worker at once, and the next supervisor runs the task again", async () => {
    const { schema, sup, worker, guard, id } = await workerBlockedByTask();
    sup.kill('SIGKILL');
    await sup.exited;
    // Its event loop blocked for a minute, the worker cannot see its IPC channel close; the guard saw its pipe end.
    await expect.poll(() => isAlive(worker), { timeout: 5_000 }).toBe(false);
    await expect.poll(() => isAlive(guard), { timeout: 5_000 }).toBe(false);

    await query(`update "${schema}".tasks set payload = '{"ms": 0}' where id = $1`, [id]);
    const next = startWithFixtures(schema, ['--workers', '1']);
    await next.ready();
    await waitForFinalStates(schema, 1);
    const [row] = await query<{ state: string; attempts: number }>(`select state, attempts from "${schema}".tasks where id = $1`, [id]);
    expect(row).toEqual({ state: 'succeeded', attempts: 2 });
    expect(next.events('orphan_workers_killed')).toEqual([]);
    await next.stop();
  });

  it('a guard killed while the primary lives is started again and told the workers: SIGKILL of the primary then still ends a blocked worker at once', async () => {
    const { sup, worker, guard } = await workerBlockedByTask();
    process.kill(guard, 'SIGKILL');
    await sup.waitForEvent('orphan_guard_lost');
    expect(sup.events('orphan_guard_lost')[0]).toMatchObject({ level: 'warn', signal: 'SIGKILL', restartInMs: 0 });
    const second = await restartedGuard(sup, worker, [guard]);
    // Lost again within a minute of its start: the next start waits (100 ms, doubling up to 30 s).
    process.kill(second, 'SIGKILL');
    await sup.waitForEvent('orphan_guard_lost', 2);
    expect(sup.events('orphan_guard_lost')[1]).toMatchObject({ restartInMs: 100 });
    const third = await restartedGuard(sup, worker, [guard, second]);

    sup.kill('SIGKILL');
    await sup.exited;
    await expect.poll(() => isAlive(worker), { timeout: 5_000 }).toBe(false);
    await expect.poll(() => isAlive(third), { timeout: 5_000 }).toBe(false);
  });

  it('SIGKILL of the primary while its guard is stopped and a task blocks its worker: the next supervisor on this host kills that worker before the task runs again', async () => {
    const { schema, sup, worker, guard, id } = await workerBlockedByTask();
    // Stopped, not killed (a killed one is started again): it cannot act on the pipe's end.
    process.kill(guard, 'SIGSTOP');
    onTestFinished(() => {
      if (isAlive(guard)) process.kill(guard, 'SIGKILL');
    });
    sup.kill('SIGKILL');
    await sup.exited;
    // No guard acting and its event loop blocked for a minute: the worker runs on.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(isAlive(worker)).toBe(true);

    await query(`update "${schema}".tasks set payload = '{"ms": 0}' where id = $1`, [id]);
    const next = startWithFixtures(schema, ['--workers', '1']);
    await next.ready();
    await next.waitForEvent('orphan_workers_killed');
    const [killed] = next.events('orphan_workers_killed');
    expect(killed).toMatchObject({ pids: [worker] });
    await expect.poll(() => isAlive(worker), { timeout: 10_000 }).toBe(false);
    await waitForFinalStates(schema, 1);
    const [row] = await query<{ state: string; attempts: number }>(`select state, attempts from "${schema}".tasks where id = $1`, [id]);
    expect(row).toEqual({ state: 'succeeded', attempts: 2 });
    // Killed before its task went back: the new attempt never ran beside the old one.
    const [orphansRecovered] = next.events('orphans_recovered');
    expect(next.logs.indexOf(killed!)).toBeLessThan(next.logs.indexOf(orphansRecovered!));
    await next.stop();
  });

  it("a graceful stop leaves no guard behind and no warning of one (close() while the process goes on: worker-pool.test.ts)", async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const workers = sup.workerPids();
    const [guard] = childPids(sup.pid).filter((pid) => !workers.includes(pid));
    expect(processName(guard!)).toBe('sh');
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
    await expect.poll(() => isAlive(guard!), { timeout: 5_000 }).toBe(false);
    expect(sup.events('orphan_guard_lost')).toEqual([]);
  });

  it('Ctrl-C while send --wait waits says which task goes on, exit 130; the task finishes', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const session = CliSession.piped(['send', 'fixture.dbSleep', '{"seconds": 1}', '--wait', '--max-attempts', '5000'], { PREFORK_SCHEMA: schema });
    const [row] = await (async () => {
      for (;;) {
        const rows = await query<{ id: string; max_attempts: number }>(`select id::text, max_attempts from "${schema}".tasks where state = 'running'`);
        if (rows.length > 0) return rows;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // The row is running before the sender reads its id (the task is handed to a worker first): interrupted in
    // that gap, send cannot name the task (a CI run on Node 24 hit it). Once the task has its own connection
    // open, the sender has long had the reply.
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(1);
    session.interrupt();
    expect(await session.exited).toBe(130);
    expect(session.stderr()).toBe(`prefork: interrupted; task ${row!.id} goes on (prefork inspect task ${row!.id})\n`);
    expect(row!.max_attempts).toBe(5000);
    await waitForFinalStates(schema, 1);
    expect(await query(`select state from "${schema}".tasks`)).toEqual([{ state: 'succeeded' }]);
    await sup.stop();
  });

  it('a primary SIGKILLed on this host is gone at once for status, scale, reload and stop, though its lease runs on', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const [{ id }] = (await statusJson(schema)).supervisors as unknown as [{ id: string }];
    // While it runs, --supervisor takes its id or the start of it, as status shows it.
    const scaled = await runCli(['scale', '1', '--supervisor', id.slice(0, 8).toUpperCase()], { schema });
    expect([scaled.code, scaled.stderr]).toEqual([0, 'prefork: asked 1 supervisor to run 1 worker\n']);
    expect((await runCli(['scale', '1', '--supervisor', 'ffffffff-'], { schema })).stderr).toBe('prefork: error: no running supervisor has id ffffffff-\n');
    sup.kill('SIGKILL');
    await sup.exited;
    // Its row still holds a lease (15 s), as another host sees it.
    const [row] = await query<{ fresh: boolean }>(`select heartbeat_at > now() - interval '10 seconds' as fresh from "${schema}".supervisors where id = $1`, [id]);
    expect(row!.fresh).toBe(true);
    const text = await runCli(['status'], { schema });
    expect(text.stdout).toContain(`no supervisor is running (start one with: prefork start)\nsupervisor ${id} pid ${sup.pid} on ${os.hostname()}: exited without stopping`);
    const json = JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as { supervisors: unknown[]; exited: { id: string; pid: number }[] };
    expect(json.supervisors).toEqual([]);
    expect(json.exited).toMatchObject([{ id, pid: sup.pid }]);
    for (const args of [['scale', '2'], ['reload'], ['stop']]) {
      const r = await runCli(args, { schema });
      expect(r.code, args[0]).toBe(3);
      expect(r.stderr, args[0]).toBe(`prefork: error: no supervisor is running on this database: supervisor ${id} (pid ${sup.pid}) has exited without stopping\n`);
    }
  });

  it("a dead pid on this host name is only a dead supervisor in this boot and PID namespace: another container's tasks are left alone", async () => {
    const schema = schemaName();
    await migrate(await admin(), schema);
    const deadPid = [4_194_000, 4_193_000, 4_192_000].find((pid) => !isAlive(pid))!;
    const scope = pidScope();
    expect(scope).toMatch(/^[\w-]+\/pid:\[\d+\]$/);
    // Two supervisors registered from this host name whose pid is not running here: one in this PID namespace
    // (killed), one in another container on the host's network (alive there). Each holds a task it started.
    const ours = randomUUID();
    const theirs = randomUUID();
    await query(
      `insert into "${schema}".supervisors (id, host, pid, pid_scope, state) values ($1, $3, $4, $5, 'running'), ($2, $3, $4, 'another-boot/pid:[4026532999]', 'running')`,
      [ours, theirs, os.hostname(), deadPid, scope],
    );
    const [a, b] = await query<{ id: string }>(
      `insert into "${schema}".tasks (name, payload, state, attempts, started_at, supervisor_id)
       values ('prefork.echo', '{"of":"ours"}', 'running', 1, now(), $1), ('prefork.echo', '{"of":"theirs"}', 'running', 1, now(), $2) returning id::text`,
      [ours, theirs],
    );
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    await expect.poll(async () => (await query<{ state: string }>(`select state from "${schema}".tasks where id = $1`, [a!.id]))[0]!.state).toBe('succeeded');
    const rows = await query<{ id: string; state: string; supervisor_id: string }>(`select id::text, state, supervisor_id::text from "${schema}".tasks where id = $1`, [b!.id]);
    expect(rows).toEqual([{ id: b!.id, state: 'running', supervisor_id: theirs }]);
    const states = await query<{ id: string; state: string }>(`select id::text, state from "${schema}".supervisors where id = any($1::uuid[]) order by state`, [[ours, theirs]]);
    expect(states).toEqual([
      { id: ours, state: 'lost' },
      { id: theirs, state: 'running' },
    ]);
    await sup.stop();
  });

  it('reload says so, exit 3, when its supervisor is killed before the reload finished', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`export default { 'mod.version': () => 1 };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    await sup.ready();
    // The new worker takes a minute to start: the reload is still going when the primary is killed.
    moduleFile.write(`import { onWorkerProcessInit } from '${distIndex}';
onWorkerProcessInit(() => new Promise((resolve) => setTimeout(resolve, 60_000)));
export default { 'mod.version': () => 2 };\n`);
    const reload = runCli(['reload', '--timeout', '30000'], { schema });
    await sup.waitForEvent('reload_started', 1, 10_000);
    sup.kill('SIGKILL');
    const r = await reload;
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^prefork: asked 1 supervisor to reload\nprefork: error: supervisor \S+ went away before its reload finished \(it stopped, or its process exited\)\n$/);
  });

  it('SIGKILL of the primary: the task a worker ran loses its attempt, the tasks claimed ahead go back uncounted', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const [ran] = await insertTasks(schema, 'fixture.dbSleep', [{ seconds: 30 }], { maxAttempts: 1 });
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(1);
    const ahead = await insertTasks(schema, 'fixture.dbSleep', [{ seconds: 0 }, { seconds: 0 }], { maxAttempts: 1 });
    // Claimed by this supervisor (state running in the database), waiting in its buffer behind the sleeper.
    const claimed = async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where state = 'running' and id = any($1::bigint[])`, [ahead]))[0]!.n;
    await expect.poll(claimed).toBe(2);
    // What the supervisor last published, after it claimed the two: the one task its worker runs.
    const published = async () => (await statusJson(schema)).supervisors[0]?.workers.flatMap((w) => w.current.map((c) => c.taskId));
    await expect.poll(published).toEqual([ran]);
    const publishedSinceClaim = async () =>
      (await query<{ after: boolean }>(`select heartbeat_at > (select max(started_at) from "${schema}".tasks where id = any($1::bigint[])) as after from "${schema}".supervisors`, [ahead]))[0]!.after;
    await expect.poll(publishedSinceClaim, { timeout: 5_000 }).toBe(true);
    // status tells the claimed ones from the one on a worker (all three are `running` in the table).
    expect((await runCli(['status'], { schema })).stdout).toMatch(/\nqueue: queued 0, running 3 \(1 on workers, 2 claimed ahead\), succeeded 0/);
    // So does `tasks`: the claimed ones have not started (their row's start time is the claim's).
    const listed = (await runCli(['tasks', '--state', 'running'], { schema })).stdout;
    expect(listed).toMatch(new RegExp(`\\n *${ran} +fixture\\.dbSleep +default +running +\\S+ +for \\d`));
    for (const id of ahead) expect(listed).toMatch(new RegExp(`\\n *${id} +fixture\\.dbSleep +default +running +\\S+ +not started \\(claimed [^)]+ ago\\)`));
    const [worker] = sup.workerPids();
    sup.kill('SIGKILL');
    await sup.exited;

    const next = startWithFixtures(schema, ['--workers', '1']);
    await next.ready();
    await waitForFinalStates(schema, 3);
    const rows = await query<{ id: string; state: string; attempts: number; code: string | null; history: { outcome: string; workerPid: number | null }[] }>(
      `select id::text, state, attempts, error ->> 'code' as code, history from "${schema}".tasks order by id`,
    );
    expect(rows).toEqual([
      { id: ran, state: 'failed', attempts: 1, code: 'SUPERVISOR_LOST', history: [expect.objectContaining({ outcome: 'lost', workerPid: worker })] },
      { id: ahead[0], state: 'succeeded', attempts: 1, code: null, history: [] },
      { id: ahead[1], state: 'succeeded', attempts: 1, code: null, history: [] },
    ]);
    await next.stop();
  });
});

/**
 * A supervisor of one worker whose event loop a task of a minute blocks (the task sent with two attempts, seen
 * running on it), with the pids of that worker and of the primary's guard.
 */
async function workerBlockedByTask(): Promise<{ schema: string; sup: SupervisorProcess; worker: number; guard: number; id: string }> {
  const schema = schemaName();
  const sup = startWithFixtures(schema, ['--workers', '1']);
  await sup.ready();
  const [worker] = sup.workerPids();
  const [guard] = childPids(sup.pid).filter((pid) => pid !== worker);
  expect(processName(guard!)).toBe('sh');
  const sent = await runCli(['send', 'fixture.block', '{"ms": 60000}', '--max-attempts', '2'], { schema });
  const id = sent.stdout.trim();
  await expect.poll(async () => (await statusJson(schema)).supervisors[0]?.workers.flatMap((w) => w.current.map((c) => c.taskId))).toEqual([id]);
  return { schema, sup, worker: worker!, guard: guard!, id };
}

/** The guard started after those `gone`: a new shell child of the primary, listing `worker` (its start line says 1). */
async function restartedGuard(sup: SupervisorProcess, worker: number, gone: number[]): Promise<number> {
  let guard: number | undefined;
  await expect.poll(() => (guard = childPids(sup.pid).find((pid) => pid !== worker && !gone.includes(pid) && processName(pid) === 'sh'))).toBeDefined();
  await expect.poll(() => sup.events('orphan_guard_started').find((e) => e.guardPid === guard)).toMatchObject({ workers: 1 });
  return guard!;
}

function processName(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}
