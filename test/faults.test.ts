/** No task hangs, no task is lost: time limits, crashes, retries, recycling, stops and reloads, for real. */
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { query, taskConnections, useTestSchema } from './support/database.js';
import { fixture, isAlive, runCli, startWithFixtures as start, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { countByState, distIndex, executionLog, insertTasks, taskModuleFile, waitForFinal, workerRunning } from './support/tasks.js';
import { useClients } from './support/clients.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
const { client } = useClients();

async function sendJson(schema: string, args: string[]) {
  const r = await runCli(['send', ...args, '--wait', '--json'], { schema });
  return { code: r.code, stderr: r.stderr, view: r.stdout ? JSON.parse(r.stdout) : null };
}

describe('time limits', () => {
  it('ends a busy loop and a hung query at the hard limit, cancels the query, and replaces the worker', async () => {
    const schema = schemaName();
    // --prefetch 0: no task is sent ahead to a worker's queue. Otherwise the hung-query task can be queued behind
    // the busy loop on a worker that cannot answer `unqueue`, and waits for that worker's hard-limit kill before
    // it starts elsewhere, while its row's started_at stays the claim time (as a CI run once showed).
    const sup = start(schema, ['--workers', '3', '--prefetch', '0']);
    await sup.ready();
    const began = Date.now();
    const [spin, hang, ok] = await Promise.all([
      sendJson(schema, ['fixture.spin']),
      sendJson(schema, ['fixture.dbHang']),
      (async () => {
        // Meanwhile other tasks keep completing on the third worker.
        const results = [];
        for (let i = 0; i < 5; i++) results.push(await runCli(['send', 'prefork.echo', `{"i":${i}}`, '--wait'], { schema }));
        return results;
      })(),
    ]);
    for (const r of [spin, hang]) {
      expect(r.code).toBe(1);
      expect(r.view).toMatchObject({ status: 'timed_out', attempts: 1, error: { code: 'TIMED_OUT', name: 'TimeoutError' } });
      expect(Date.parse(r.view.finishedAt) - Date.parse(r.view.startedAt)).toBeLessThan(1000 + 1500);
    }
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(ok.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    // The hung query's backend is gone, and the pool is back to three ready workers.
    await expect.poll(() => taskConnections(schema)).toEqual([]);
    expect(sup.events('task_hard_timeout')).toHaveLength(2);
    // Each worker had its replacement forked at the limit; the busy loop's was killed 600 ms later.
    const replacing = sup.events('worker_replacing');
    expect(replacing.map((e) => e.reason).sort()).toEqual([spin, hang].map((r) => `task ${r.view.id} passed its hard time limit`).sort());
    const killed = sup.events('worker_killed_for_timeout');
    expect(killed.map((e) => e.taskId)).toContain(spin.view.id);
    for (const k of killed) {
      const forked = replacing.find((e) => e.workerPid === k.workerPid);
      expect(Date.parse(String(k.time)) - Date.parse(String(forked?.time))).toBeGreaterThanOrEqual(500);
    }
    expect(sup.events('worker_crashed')).toEqual([]);
    await sup.waitForEvent('worker_ready', 3 + replacing.length);
    await expect.poll(async () => (await runCli(['status', '--json'], { schema })).stdout).toMatch(/"state":"ready".*"state":"ready".*"state":"ready"/);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('a worker killed at a hard limit before its replacement is ready is not counted as crashed', async () => {
    const schema = schemaName();
    // The replacement (worker 2) takes 3 s in a start-up hook: the kill, 600 ms after the limit, comes first.
    const moduleFile = taskModuleFile(`import { defineTask, onWorkerProcessInit } from '${distIndex}';
onWorkerProcessInit(async ({ workerId }) => {
  if (workerId !== 1) await new Promise((resolve) => setTimeout(resolve, 3_000));
});
export default { 'mod.spin': defineTask({ maxAttempts: 1, hardTimeoutMs: 500, run: () => { for (;;); } }) };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    await sup.ready();
    const spin = await sendJson(schema, ['mod.spin']);
    expect(spin.view).toMatchObject({ status: 'timed_out' });
    await sup.waitForEvent('worker_killed_for_timeout');
    await expect.poll(() => sup.events('worker_exited').length + sup.events('worker_crashed').length).toBe(1);
    expect(sup.events('worker_crashed')).toEqual([]);
    expect(sup.events('worker_exited')).toEqual([expect.objectContaining({ signal: 'SIGKILL' })]);
    await sup.stop();
  });

  it('a task that catches the cancel at its hard limit and returns still ends timed_out', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const r = await sendJson(schema, ['fixture.dbHangCatch']);
    expect(r.code).toBe(1);
    expect(r.view).toMatchObject({ status: 'timed_out', result: null, error: { code: 'TIMED_OUT' } });
    await sup.stop();
  });

  it("a worker killed at one task's hard limit gives the task running beside it back uncounted", async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1', '--concurrency', '2', '--prefetch', '0']);
    await sup.ready();
    const sibling = sendJson(schema, ['fixture.dbSleep', '{"seconds": 3}', '--max-attempts', '1']);
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(1);
    const spin = await sendJson(schema, ['fixture.spin']);
    expect(spin.view).toMatchObject({ status: 'timed_out' });
    expect(sup.events('worker_killed_for_timeout').map((e) => e.taskId)).toEqual([spin.view.id]);
    // The kill is the supervisor's step, not a crash (for the log and prefork_worker_exits_total's label alike).
    expect(sup.events('worker_crashed')).toEqual([]);
    expect(sup.events('worker_exited')).toContainEqual(expect.objectContaining({ signal: 'SIGKILL' }));
    // Its only attempt was not spent by the kill: it ran again, to the end, on the replacement.
    const s = await sibling;
    expect(s.view).toMatchObject({ status: 'succeeded', attempts: 1, result: { slept: 3, attempt: 1 } });
    const history = await query<{ history: unknown[] }>(`select history from "${schema}".tasks where id = $1`, [s.view.id]);
    expect(history[0]!.history).toEqual([]);
    expect(sup.events('tasks_requeued_uncounted')).toEqual([expect.objectContaining({ taskIds: [s.view.id] })]);
    await sup.stop();
  });

  it("a SIGKILLed worker's running query is ended by its connection's name when the worker never reported its backend", async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const sent = await runCli(['send', 'fixture.dbSpin'], { schema });
    const id = sent.stdout.trim();
    const pid = await workerRunning(schema, sup, id);
    await expect.poll(async () => (await query(`select state from pg_stat_activity where application_name like $1`, [`prefork:${schema} %`])).map((r) => r.state)).toEqual(['active']);
    process.kill(pid, 'SIGKILL');
    // Ended by the primary, not left to the server's check of a dead client (client_connection_check_interval).
    await sup.waitForEvent('orphan_backends_terminated');
    expect(sup.events('orphan_backends_terminated')).toEqual([expect.objectContaining({ terminated: 1 })]);
    await expect.poll(() => taskConnections(schema)).toEqual([]);
    expect(sup.events('worker_crashed')).toHaveLength(1);
    await waitForFinal(schema, 1);
    await sup.stop();
  });

  it('a replacement that cannot start after the worker it replaced was killed is forked again until one can', async () => {
    const schema = schemaName();
    const gate = join(tmpdir(), `prefork-test-gate-${randomUUID()}`);
    onTestFinished(() => rmSync(gate, { force: true }));
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--prefetch', '0', '--tasks', fixture('gated-tasks.js')], { PREFORK_TEST_IMPORT_GATE: gate });
    await sup.ready();
    writeFileSync(gate, ''); // from now on a new worker fails at import
    const spin = await sendJson(schema, ['fixture.spin']);
    expect(spin.view).toMatchObject({ status: 'timed_out' });
    await sup.waitForEvent('worker_killed_for_timeout');
    // The replacement, forked at the limit, fails after the old worker was killed: before, nothing took their
    // place, and the pool stayed one worker short.
    await sup.waitForLog((l) => l.event === 'worker_startup_failed' && typeof l.workerId === 'number');
    expect(Date.parse(String(sup.events('worker_startup_failed').at(-1)!.time))).toBeGreaterThan(Date.parse(String(sup.events('worker_killed_for_timeout')[0]!.time)));
    rmSync(gate);
    await expect
      .poll(async () => (await runCli(['status', '--json'], { schema })).stdout, { timeout: 20_000 })
      .toMatch(/"state":"ready".*"state":"ready"/);
    expect((await runCli(['send', 'prefork.echo', '{"whole":true}', '--wait'], { schema })).stdout).toBe('{"whole":true}\n');
    await sup.stop();
  });

  it('aborts ctx.signal at the soft limit and lets the handler finish', async () => {
    const schema = schemaName();
    // The default soft limit, for the built-in sleep (the fixtures set their own).
    const sup = start(schema, ['--workers', '1', '--soft-timeout', '300']);
    await sup.ready();
    const r = await sendJson(schema, ['fixture.soft']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.view.result).toEqual({ aborted: true, reason: 'soft time limit of 300 ms passed', code: 'SOFT_TIMEOUT' });
    // Past the soft limit the handler can still write its clean-up: its connection opens, a transaction runs.
    const cleanup = await sendJson(schema, ['fixture.softCleanup']);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(cleanup.view.result).toEqual({ aborted: true, plain: 'plain', inTransaction: 'in a transaction' });
    // An AbortError that carries the signal's reason as its cause (Node's promise APIs given ctx.signal) is
    // recorded as that reason, and so is the built-in sleep's.
    const timer = await sendJson(schema, ['fixture.softTimer']);
    expect(timer.code).toBe(1);
    expect(timer.view).toMatchObject({ status: 'failed', error: { name: 'PreforkError', code: 'SOFT_TIMEOUT', message: 'soft time limit of 300 ms passed' } });
    const sleep = await sendJson(schema, ['prefork.sleep', '{"ms": 10000}', '--max-attempts', '1']);
    expect(sleep.view).toMatchObject({ status: 'failed', error: { code: 'SOFT_TIMEOUT' } });
    await sup.stop();
  });
});

describe('crashes', () => {
  it('redelivers the task of a SIGKILLed worker at once; it succeeds on attempt 2', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2']);
    await sup.ready();
    const sent = await runCli(['send', 'fixture.dbSleep', '{"seconds": 1}'], { schema });
    const id = sent.stdout.trim();
    const pid = await workerRunning(schema, sup, id);
    process.kill(pid, 'SIGKILL');
    const waited = await sendJson(schema, ['prefork.echo', '{}']);
    expect(waited.code).toBe(0);
    await waitForFinal(schema, 2, 20_000);
    const [row] = await query<{ state: string; attempts: number; worker_pid: number; errors: { code: string }[] }>(
      `select state, attempts, worker_pid, errors from "${schema}".tasks where id = $1`,
      [id],
    );
    expect(row).toMatchObject({ state: 'succeeded', attempts: 2, errors: [{ code: 'WORKER_CRASHED' }] });
    expect(row!.worker_pid).not.toBe(pid);
    expect(sup.events('worker_crashed')).toHaveLength(1);
    await sup.stop();
  });

  it("a task's uncaught exception or unhandled rejection fails that task only: the worker finishes the others, then is replaced", async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1', '--concurrency', '3']);
    await sup.ready();
    const prefork = client(schema);
    const [firstPid] = sup.workerPids();

    const siblingsDone = Promise.all([
      prefork.run('fixture.hold', { ms: 1500 }, { timeoutMs: 15_000 }),
      prefork.run('fixture.hold', { ms: 1500 }, { timeoutMs: 15_000 }),
    ]);
    const stray = await prefork.run('fixture.strayThrow', {}, { timeoutMs: 15_000 });
    // Failed when the timer threw, not when the task ended (10 s later: it ignores its signal).
    expect(stray).toMatchObject({ status: 'failed', attempts: 1, result: null, error: { message: 'thrown from a timer', code: 'UNCAUGHT_EXCEPTION' } });
    expect(Date.parse(stray.finishedAt!) - Date.parse(stray.startedAt!)).toBeLessThan(1000);
    // Its connection is closed at once (a transaction would keep its locks until the worker left), while the
    // tasks beside it still hold theirs.
    const straysConnection = async () => (await taskConnections(schema)).filter((c) => c.application_name.endsWith(` t${stray.id}`));
    await expect.poll(straysConnection, { timeout: 1000, interval: 20 }).toEqual([]);
    expect(await taskConnections(schema)).toHaveLength(2);
    const siblings = await siblingsDone;
    // The tasks beside it ran to their end on the same worker, not charged an attempt.
    expect(siblings.map((t) => [t.status, t.attempts, (t.result as { workerPid: number }).workerPid])).toEqual([
      ['succeeded', 1, firstPid],
      ['succeeded', 1, firstPid],
    ]);
    // Logged once as an error, though its interval threw on every 50 ms until its worker left.
    expect(sup.events('task_uncaught_error')).toMatchObject([{ taskId: stray.id, kind: 'uncaught exception', level: 'error' }]);
    expect(sup.events('worker_replacing')).toMatchObject([{ workerPid: firstPid, reason: `uncaught exception in task ${stray.id}` }]);
    await sup.waitForEvent('worker_replaced');

    const floating = await prefork.run('fixture.floatingReject', {}, { timeoutMs: 15_000 });
    expect(floating).toMatchObject({ status: 'failed', result: null, error: { message: 'nobody awaited this', code: 'UNHANDLED_REJECTION' } });
    await sup.waitForEvent('worker_replaced', 2);
    expect(await prefork.run('prefork.echo', { after: true }, { timeoutMs: 15_000 })).toMatchObject({ status: 'succeeded', result: { after: true } });
    expect(sup.events('worker_crashed')).toEqual([]);
    // What the failed tasks did afterwards ('too late', 'returned anyway') was not recorded over their failure:
    // checked once both old workers are gone, so nothing of theirs can still arrive.
    await sup.waitForEvent('worker_exited', 2);
    expect((await prefork.get(stray.id))?.status).toBe('failed');
    expect((await prefork.get(floating.id))?.status).toBe('failed');
    await sup.stop();
  });

  it('with one task per worker (no scope needed), the task running is the one charged', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const prefork = client(schema);
    const [floating, after] = await Promise.all([
      prefork.run('fixture.floatingReject', {}, { timeoutMs: 15_000 }),
      prefork.run('prefork.echo', { queued: 'behind it' }, { timeoutMs: 15_000 }),
    ]);
    expect(floating).toMatchObject({ status: 'failed', attempts: 1, error: { message: 'nobody awaited this', code: 'UNHANDLED_REJECTION' } });
    expect(after).toMatchObject({ status: 'succeeded', attempts: 1, result: { queued: 'behind it' } });
    expect(sup.events('worker_replacing')).toHaveLength(1);
    expect(sup.events('worker_crashed')).toEqual([]);
    await sup.stop();
  });

  it('fails a task that kills its worker on every attempt with WORKER_CRASHED after exactly maxAttempts', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2']);
    await sup.ready();
    const r = await sendJson(schema, ['fixture.exit', '{}', '--max-attempts', '3']);
    expect(r.code).toBe(1);
    expect(r.view).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'WORKER_CRASHED' } });
    expect(sup.events('worker_crashed')).toHaveLength(3);
    // The supervisor is still whole.
    expect((await runCli(['send', 'prefork.echo', '{"still":"alive"}', '--wait'], { schema })).stdout).toBe('{"still":"alive"}\n');
    await sup.stop();
  });

  it('chaos: 2,000 tasks while a random worker is SIGKILLed every 200-500 ms; none lost, none recorded twice', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '4', '--max-attempts', '20']);
    await sup.ready();
    const executions = executionLog();
    const ids = await insertTasks(schema, 'fixture.recordToFile', Array.from({ length: 2000 }, () => ({ file: executions.file, ms: 10 })));
    let kills = 0;
    let done = false;
    const killer = (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
        const alive = sup.workerPids().filter(isAlive);
        const victim = alive[Math.floor(Math.random() * alive.length)];
        if (victim && !done) {
          process.kill(victim, 'SIGKILL');
          kills += 1;
        }
      }
    })();
    try {
      await waitForFinal(schema, 2000);
    } finally {
      done = true;
      await killer;
    }
    expect(await countByState(schema)).toEqual({ succeeded: 2000 });
    // Every task ran; one whose worker died after it ran (before its outcome was recorded) ran again.
    const runs = executions.runs();
    expect([...runs.keys()].sort()).toEqual([...ids].sort());
    const duplicates = [...runs.values()].filter((n) => n > 1).length;
    console.log(`chaos: ${kills} workers killed, ${duplicates} tasks executed more than once (at-least-once delivery)`);
    expect(kills).toBeGreaterThan(3);
    await sup.stop();
  });
});

describe('lost replies', () => {
  it('a task the database says this live supervisor runs, and it does not know of, goes back to the queue and runs; one it holds is left alone', async () => {
    const schema = schemaName();
    // A lease of 3 s: the supervisor looks every second for tasks it does not know of, claimed over 3 s ago.
    const sup = start(schema, ['--workers', '2', '--lease', '3000']);
    await sup.ready();
    const supervisorId = sup.logs.find((l) => typeof l.supervisorId === 'string')!.supervisorId as string;
    // Held: running for 6 s, past the age at which an unknown task counts as lost.
    const held = (JSON.parse((await runCli(['send', 'fixture.dbSleep', '{"seconds": 6}', '--max-attempts', '1', '--json'], { schema })).stdout) as { id: string }).id;
    // Lost: as a claim leaves it whose commit succeeded while its reply was lost with the connection.
    const [lost] = await insertTasks(schema, 'fixture.failOnce', [{}], { delayMs: 3_600_000 });
    await query(`update "${schema}".tasks set state = 'running', attempts = 1, supervisor_id = $2, started_at = now() - interval '1 minute' where id = $1`, [lost, supervisorId]);

    await sup.waitForEvent('lost_claims_released');
    expect(sup.events('lost_claims_released')[0]!.taskIds).toEqual([lost]);
    await waitForFinal(schema, 2, 30_000);
    const rows = await query<{ id: string; state: string; attempts: number }>(`select id::text, state, attempts from "${schema}".tasks order by id`);
    // The lost one was given back uncounted, then retried once (failOnce) like any task; the held one ran on.
    expect(rows).toEqual([
      { id: held, state: 'succeeded', attempts: 1 },
      { id: lost, state: 'succeeded', attempts: 2 },
    ]);
    expect(sup.events('lost_claims_released').flatMap((l) => l.taskIds as string[])).toEqual([lost]);
    await sup.stop();
  }, 60_000);
});

describe('stops, reloads and recycling', () => {
  it('stop lets the 4 running tasks finish and leaves the 100 queued ones for the next start', async () => {
    const schema = schemaName();
    // Queue first, so that the 4 sleepers (higher priority) are what the 4 workers take.
    const first = SupervisorProcess.start(schema, ['--workers', '1']);
    await first.ready();
    await first.stop();
    const sleepers = await insertTasks(schema, 'fixture.dbSleep', [{ seconds: 1 }, { seconds: 1 }, { seconds: 1 }, { seconds: 1 }], { priority: 10 });
    await insertTasks(schema, 'prefork.echo', Array.from({ length: 100 }, (_, i) => ({ i })));
    const sup = start(schema, ['--workers', '4']);
    await sup.ready();
    // Four in the workers' hands (their connections are open); more may be claimed ahead in the primary's buffer.
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(4);
    const stop = await runCli(['stop'], { schema });
    expect(stop.code, stop.stderr).toBe(0);
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    expect(await countByState(schema)).toEqual({ succeeded: 4, queued: 100 });
    // Tasks claimed ahead but never started were given back uncounted.
    expect(await query(`select id from "${schema}".tasks where state = 'queued' and attempts <> 0`)).toEqual([]);
    const done = await query<{ id: string }>(`select id from "${schema}".tasks where state = 'succeeded' order by id`);
    expect(done.map((r) => r.id)).toEqual(sleepers);

    const next = start(schema, ['--workers', '2']);
    await next.ready();
    await waitForFinal(schema, 104);
    expect(await countByState(schema)).toEqual({ succeeded: 104 });
    await next.stop();
  });

  it('reload during a stream of 500 tasks: all succeed and every worker is replaced', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '3']);
    await sup.ready();
    const before = sup.workerPids();
    await insertTasks(schema, 'prefork.sleep', Array.from({ length: 500 }, () => ({ ms: 15 })));
    await expect.poll(async () => (await countByState(schema)).succeeded ?? 0).toBeGreaterThan(30);
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    await waitForFinal(schema, 500);
    expect(await countByState(schema)).toEqual({ succeeded: 500 });
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout);
    const after: number[] = status.supervisors[0].workers.map((w: { pid: number }) => w.pid);
    expect(after).toHaveLength(3);
    for (const pid of after) expect(before).not.toContain(pid);
    for (const pid of before) expect(isAlive(pid)).toBe(false);
    // Tasks ran on old and new workers alike.
    const pids = await query<{ worker_pid: number }>(`select distinct worker_pid from "${schema}".tasks`);
    expect(pids.some((r) => before.includes(r.worker_pid))).toBe(true);
    expect(pids.some((r) => after.includes(r.worker_pid))).toBe(true);
    expect(sup.events('worker_crashed')).toEqual([]);
    await sup.stop();
  });

  it("reload applies the task module's new options: a task's maxAttempts changed in the file counts after the reload", async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile();
    const file = moduleFile.path;
    const write = (maxAttempts: number) =>
      moduleFile.write(`import { defineTask } from '${distIndex}';
export default { 'opt.fails': defineTask({ maxAttempts: ${maxAttempts}, backoff: { type: 'none' }, run: () => { throw new Error('no'); } }) };\n`);
    write(1);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', file]);
    await sup.ready();
    const failedAfter = async () => JSON.parse((await runCli(['send', 'opt.fails', '{}', '--wait', '--json'], { schema })).stdout) as { status: string; attempts: number };
    expect(await failedAfter()).toMatchObject({ status: 'failed', attempts: 1 });
    write(3);
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    expect(await failedAfter()).toMatchObject({ status: 'failed', attempts: 3 });
    await sup.stop();
  });

  it('a reload that adds and removes tasks: each task goes only to a worker whose module has it; a removed name waits in the queue', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile();
    const file = moduleFile.path;
    const slow = `'mod.slow': () => new Promise((resolve) => setTimeout(resolve, 3_000, 'slow'))`;
    moduleFile.write(`export default { 'mod.kept': (p) => p, 'mod.removed': (p) => p, ${slow} };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--concurrency', '2', '--tasks', file]);
    await sup.ready();
    // One slow task on each old worker: the first replaced stays until its task is done, 3 s, while the other
    // old worker, with a slot free, runs beside the first new one.
    const slowIds = await insertTasks(schema, 'mod.slow', [{}, {}]);
    await expect.poll(async () => (await query(`select 1 from "${schema}".tasks where id = any($1::bigint[]) and state = 'running'`, [slowIds])).length).toBe(2);
    // Queued for the new module: no worker runs them yet. One attempt each, so a task handed to a worker
    // without it would fail for good (UNKNOWN_TASK) instead of being retried.
    const added = await insertTasks(schema, 'mod.added', Array.from({ length: 40 }, (_, i) => ({ i })), { maxAttempts: 1 });
    // The new module loads in 1.5 s: the first new worker is ready while both old ones still run their slow task.
    moduleFile.write(
      `import { setTimeout as delay } from 'node:timers/promises';\nawait delay(1_500);\nexport default { 'mod.kept': (p) => p, 'mod.added': (p) => ({ added: p.i }), ${slow} };\n`,
    );
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    await waitForFinal(schema, 42);
    const states = await query<{ state: string; error: { code: string } | null }>(`select state, error from "${schema}".tasks where id = any($1::bigint[])`, [[...added, ...slowIds]]);
    expect(states.filter((r) => r.state !== 'succeeded').map((r) => r.error?.code)).toEqual([]);

    // The name the new module dropped: no longer among those the supervisor says it runs (what senders on this host
    // look for), and a task of it is left queued for a supervisor that runs it, not claimed and failed.
    await expect
      .poll(async () => (await query<{ tasks: string[] }>(`select tasks from "${schema}".supervisors`))[0]!.tasks.filter((n) => n.startsWith('mod.')).sort())
      .toEqual(['mod.added', 'mod.kept', 'mod.slow']);
    const removed = (await query<{ id: string }>(`select "${schema}".add_task('mod.removed') as id`))[0]!.id;
    // A task queued after it, run: the dispatcher has claimed since the removed one was queued.
    await query(`select "${schema}".add_task('mod.kept', '{"after": true}')`);
    await expect.poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where name = 'mod.kept' and state = 'succeeded'`))[0]!.n).toBe(1);
    expect(await query(`select state, attempts from "${schema}".tasks where id = $1`, [removed])).toEqual([{ state: 'queued', attempts: 0 }]);
    await sup.stop();
  });

  it('a reload that drops a task name gives its claimed tasks not yet started back to the queue, uncounted', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(
      `import { defineTask } from '${distIndex}';\nexport default { 'mod.kept': (p) => p, 'mod.dropped': () => new Promise((resolve) => setTimeout(resolve, 1_500, 'done')), 'mod.limited': defineTask({ maxRunning: 1, run: () => 1 }) };\n`,
    );
    const file = moduleFile.path;
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', file]);
    await sup.ready();
    const limits = async () => (JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as { limits: { name: string }[] }).limits.map((l) => l.name);
    expect(await limits()).toEqual(['mod.limited']);
    const ids = await insertTasks(schema, 'mod.dropped', [{}, {}, {}, {}]);
    // One runs; two more are claimed ahead (the supervisor's buffer), the last waits in the queue.
    await expect.poll(async () => (await query(`select 1 from "${schema}".tasks where name = 'mod.dropped' and state = 'running'`)).length, { timeout: 10_000 }).toBe(3);
    moduleFile.write(`export default { 'mod.kept': (p) => p };\n`);
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    // The one running finished on the old worker; those claimed ahead went back to the queue, attempts not counted,
    // and wait there with the last for a supervisor that runs the name (none reached the new worker, which would
    // fail them as UNKNOWN_TASK, and none stays claimed here).
    await expect
      .poll(async () => query(`select state, attempts from "${schema}".tasks where id = any($1::bigint[]) order by state, id`, [ids]), { timeout: 10_000 })
      .toEqual([
        { state: 'queued', attempts: 0 },
        { state: 'queued', attempts: 0 },
        { state: 'queued', attempts: 0 },
        { state: 'succeeded', attempts: 1 },
      ]);
    expect(sup.events('tasks_released').flatMap((l) => l.taskIds as string[])).toHaveLength(2);
    // Sent anyway (a supervisor elsewhere may run it), with a warning.
    const sent = await runCli(['send', 'mod.dropped', '{}'], { schema });
    expect(sent.code).toBe(0);
    expect(sent.stderr).toBe('prefork: warning: no running supervisor offers "mod.dropped" now (they run mod.kept); the task waits queued until one does\n');
    expect((await runCli(['send', 'mod.kept', '{}'], { schema })).stderr).toBe('');
    // The limit of a name the module dropped is no longer shown.
    expect(await limits()).toEqual([]);
    await sup.stop();
    // No supervisor runs at all: sent, with a warning (a send --wait would wait until one starts).
    const none = await runCli(['send', 'mod.kept', '{}'], { schema });
    expect(none.code).toBe(0);
    expect(none.stderr).toBe(`prefork: warning: no supervisor is running on schema "${schema}" now; the task waits queued until one starts\n`);
  });

  it('a reload whose new task module does not load stops at once with the reason; every worker goes on with the code it had', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`export default { 'mod.version': () => 1 };\n`);
    const file = moduleFile.path;
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--tasks', file]);
    await sup.ready();
    const version = async () => JSON.parse((await runCli(['send', 'mod.version', '{}', '--wait', '--json'], { schema })).stdout).result as number;

    moduleFile.write(`export default { 'mod.version': () => 2,\n`);
    const failed = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/^prefork: reload failed on supervisor \S+: a new worker could not start: could not load the task module .+; 0 of 2 workers were replaced, the others kept the code they had$/m);
    expect(failed.stderr.split('\n').filter((l) => l.includes('failed'))).toHaveLength(1);
    // Both old workers take tasks (the one whose replacement failed included), with the old code.
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as {
      supervisors: { workers: { state: string }[]; lastReload: { outcome: string; error: string } }[];
    };
    expect(status.supervisors[0]!.workers.map((w) => w.state)).toEqual(['ready', 'ready']);
    expect(status.supervisors[0]!.lastReload).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/could not load the task module/) });
    expect((await runCli(['status'], { schema })).stdout).toMatch(/\n {2}last reload failed at \S+: a new worker could not start/);
    expect(sup.events('worker_replacement_failed')).toHaveLength(1);
    expect(await version()).toBe(1);
    // A worker more, which cannot start: status says why it is missing.
    expect((await runCli(['scale', '3'], { schema })).code).toBe(0);
    await expect
      .poll(async () => (await runCli(['status'], { schema })).stdout, { timeout: 10_000 })
      .toMatch(/\n {2}2 of 3 workers ready: workers fail to start \(\d+ in a row, last at \S+\): could not load the task module /);
    // Back to two while the third is waiting out its respawn backoff: that one is dropped, not a ready worker.
    const readyBefore = sup.workerPids().filter(isAlive);
    const exitsBefore = sup.events('worker_exited').length;
    expect((await runCli(['scale', '2'], { schema })).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    const ready = sup.events('worker_ready').map((l) => l.workerPid);
    expect(sup.events('worker_exited').slice(exitsBefore).filter((l) => ready.includes(l.workerPid))).toEqual([]);
    expect(readyBefore.filter((pid) => ready.includes(pid)).every(isAlive)).toBe(true);

    moduleFile.write(`export default { 'mod.version': () => 2 };\n`);
    const fixed = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(await version()).toBe(2);
    await sup.stop();
  });

  it('a reload replaces a worker still starting when it began too: no worker keeps the old module', async () => {
    const schema = schemaName();
    // Worker 2 takes 4 s in a start-up hook: it has loaded this module (version 1) when the reload comes, and is
    // ready after the first new worker.
    const moduleFile = taskModuleFile(`import { defineTask, onWorkerProcessInit } from '${distIndex}';
onWorkerProcessInit(async ({ workerId, log }) => {
  if (workerId !== 2) return;
  log.info({ event: 'test_slow_start' }, 'starting slowly');
  await new Promise((resolve) => setTimeout(resolve, 4_000));
});
export default { 'mod.version': () => 1, 'mod.old': defineTask({ schedule: '0 0 1 1 *', run: () => 'old' }) };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    await sup.ready();
    expect((await runCli(['scale', '2'], { schema })).code).toBe(0);
    await expect.poll(() => sup.events('test_slow_start').length).toBe(1);
    const before = sup.events('worker_forked').map((l) => l.workerPid as number);
    expect(before).toHaveLength(2);

    moduleFile.write(`export default { 'mod.version': () => 2 };\n`);
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as { supervisors: { workers: { pid: number; state: string }[]; tasks: string[] }[] };
    const [mine] = status.supervisors;
    expect(mine!.workers.map((w) => w.state)).toEqual(['ready', 'ready']);
    for (const w of mine!.workers) expect(before).not.toContain(w.pid);
    // What the supervisor says it runs is the new module's, though the old one's worker was ready last.
    expect(mine!.tasks.filter((n) => n.startsWith('mod.'))).toEqual(['mod.version']);
    // The old module's schedule was disarmed by the first new worker, and not armed again by worker 2's module.
    const readyIds = sup.events('worker_ready').map((l) => l.workerId as number);
    expect(readyIds.indexOf(3)).toBeLessThan(readyIds.indexOf(2));
    expect(sup.events('schedule_armed').filter((l) => l.task === 'mod.old')).toHaveLength(1);
    expect(sup.events('schedule_disarmed').filter((l) => l.task === 'mod.old')).toHaveLength(1);
    const versions = await Promise.all(Array.from({ length: 6 }, async () => JSON.parse((await runCli(['send', 'mod.version', '{}', '--wait', '--json'], { schema })).stdout).result as number));
    expect(versions).toEqual([2, 2, 2, 2, 2, 2]);
    await sup.stop();
  });

  it('a reload asked for while one runs is done after it: the second deploy reaches every worker', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`export default { 'mod.version': () => 1 };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    await sup.ready();
    // Version 2 says when a worker has loaded it, and then takes 1.5 s more to load: the first reload is running.
    moduleFile.write(`process.stdout.write(JSON.stringify({ event: 'test_v2_loading' }) + '\\n');
await new Promise((resolve) => setTimeout(resolve, 1_500));
export default { 'mod.version': () => 2 };\n`);
    expect((await runCli(['reload', '--no-wait'], { schema })).code).toBe(0);
    await expect.poll(() => sup.events('test_v2_loading').length).toBe(1);
    moduleFile.write(`export default { 'mod.version': () => 3 };\n`);
    const second = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse((await runCli(['send', 'mod.version', '{}', '--wait', '--json'], { schema })).stdout).result).toBe(3);
    expect(sup.events('reload_finished')).toHaveLength(2);
    await sup.stop();
  });

  it('a reload asked for while the supervisor is starting is done once it is ready: the deploy reaches the worker', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`import { onWorkerProcessInit } from '${distIndex}';
onWorkerProcessInit(async ({ log }) => {
  log.info({ event: 'test_slow_start' }, 'starting slowly');
  await new Promise((resolve) => setTimeout(resolve, 2_000));
});
export default { 'mod.version': () => 1 };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    // The worker has loaded version 1 and waits in its hook when version 2 is deployed.
    await sup.waitForEvent('test_slow_start');
    moduleFile.write(`export default { 'mod.version': () => 2 };\n`);
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    expect(JSON.parse((await runCli(['send', 'mod.version', '{}', '--wait', '--json'], { schema })).stdout).result).toBe(2);
    expect(sup.events('reload_finished')).toHaveLength(1);
    await sup.stop();
  });

  it('a worker recycled while its task module does not load goes on taking tasks until a replacement starts', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`export default { 'mod.version': () => 1 };\n`);
    const file = moduleFile.path;
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--max-tasks-per-worker', '2', '--tasks', file]);
    await sup.ready();
    // Broken on disk (a deploy gone wrong): the recycle's replacement cannot load it.
    moduleFile.write(`export default { 'mod.version': () => 2,\n`);
    const ids = await insertTasks(schema, 'mod.version', Array.from({ length: 6 }, () => ({})));
    await waitForFinal(schema, 6, 30_000);
    const rows = await query<{ state: string; result: number }>(`select state, result from "${schema}".tasks where id = any($1::bigint[])`, [ids]);
    expect(rows.map((r) => [r.state, r.result])).toEqual(Array.from({ length: 6 }, () => ['succeeded', 1]));
    expect(sup.events('worker_replacement_failed').length).toBeGreaterThanOrEqual(1);
    await sup.stop();
  });

  it('--max-tasks-per-worker 10 with 100 tasks: at least 10 worker processes, every task succeeds', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2', '--max-tasks-per-worker', '10']);
    await sup.ready();
    await insertTasks(schema, 'prefork.echo', Array.from({ length: 100 }, (_, i) => ({ i })));
    await waitForFinal(schema, 100);
    expect(await countByState(schema)).toEqual({ succeeded: 100 });
    const pids = await query<{ worker_pid: number; n: number }>(`select worker_pid, count(*)::int as n from "${schema}".tasks group by worker_pid`);
    expect(pids.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...pids.map((p) => p.n))).toBeLessThanOrEqual(10);
    expect(sup.events('worker_crashed')).toEqual([]);
    await sup.stop();
  });

  it('--max-memory-per-worker replaces a worker a task left past the limit, once it is idle, without waiting for another task', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1', '--max-memory-per-worker', '150']);
    await sup.ready();
    const [worker] = sup.workerPids();
    const sent = await runCli(['send', 'fixture.retain', '{"mb": 160}', '--wait'], { schema });
    expect(sent.code, sent.stderr).toBe(0);
    // No further task: the check at the task's end saw the memory of before it; the idle worker's next heartbeat does.
    const replacing = await sup.waitForLog((l) => l.event === 'worker_replacing' && l.workerPid === worker, 10_000);
    expect(replacing.reason).toMatch(/^uses \d+ MB \(--max-memory-per-worker 150\)$/);
    await sup.waitForEvent('worker_ready', 2);
    await expect.poll(() => isAlive(worker!), { timeout: 10_000 }).toBe(false);
    await sup.stop();
  });

  it('scale adds and retires workers at run time', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    expect((await runCli(['scale', '3'], { schema })).code).toBe(0);
    await sup.waitForEvent('worker_ready', 3);
    expect((await runCli(['scale', '1'], { schema })).code).toBe(0);
    await sup.waitForEvent('worker_exited', 2);
    await expect.poll(async () => JSON.parse((await runCli(['status', '--json'], { schema })).stdout).supervisors[0].workers.length).toBe(1);
    expect((await runCli(['send', 'prefork.echo', '{}', '--wait'], { schema })).code).toBe(0);
    await sup.stop();
  });
});

describe('scaling up in waves', () => {
  it('a big scale-up forks a few workers at a time, and a scale back down meanwhile stops it', async () => {
    const schema = schemaName();
    // Every worker but the first takes 3 s in a start-up hook: none of the first wave is ready before the checks.
    const moduleFile = taskModuleFile(`import { onWorkerProcessInit } from '${distIndex}';
onWorkerProcessInit(async ({ workerId }) => {
  if (workerId > 1) await new Promise((resolve) => setTimeout(resolve, 3_000));
});
export default { 'mod.echo': (p) => p };\n`);
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', moduleFile.path]);
    await sup.ready();
    const wave = Math.max(4, 2 * availableParallelism());
    // A typo: 40 workers. The first wave is forked; the rest wait for it to be ready.
    expect((await runCli(['scale', '40'], { schema })).code).toBe(0);
    const status = async () =>
      JSON.parse((await runCli(['status', '--json'], { schema })).stdout).supervisors[0] as { workersWanted: number; workers: { pid: number; state: string }[] };
    await expect.poll(async () => (await status()).workers.length).toBe(1 + wave);
    expect(sup.events('worker_forked')).toHaveLength(1 + wave);
    expect((await status()).workersWanted).toBe(40);
    // Corrected: starting ones are stopped (not the ready one, which goes on taking tasks), and no further wave comes.
    const first = sup.events('worker_forked')[0]!.workerPid as number;
    expect((await runCli(['scale', '2'], { schema })).code).toBe(0);
    await expect.poll(async () => (await status()).workers.length).toBe(2);
    expect((await status()).workers.find((w) => w.pid === first)?.state).toBe('ready');
    await expect.poll(async () => (await status()).workers.map((w) => w.state), { timeout: 20_000 }).toEqual(['ready', 'ready']);
    expect(sup.events('worker_forked')).toHaveLength(1 + wave);
    expect(JSON.parse((await runCli(['send', 'mod.echo', '{"a":1}', '--wait', '--json'], { schema })).stdout).result).toEqual({ a: 1 });
    await sup.stop();
  });
});

describe('start-up failures', () => {
  it('refuses a --tasks that is not a file at once, exit 2, as it does a missing one: no worker is forked', async () => {
    const schema = schemaName();
    const dir = join(fixture('tasks.js'), '..');
    for (const [tasks, message] of [
      [dir, `task module is a directory, not a file: ${dir}`],
      ['/dev/null', 'task module is not a regular file: /dev/null'],
      [fixture('nope.js'), `task module not found: ${fixture('nope.js')}`],
    ] as const) {
      expect(await runCli(['start', '--workers', '1', '--tasks', tasks], { schema }), tasks).toEqual({ code: 2, stdout: '', stderr: `prefork: error: ${message}\n` });
    }
  });

  it('stops with the module error when the task module cannot load, instead of forking forever', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--tasks', fixture('broken-tasks.js')]);
    expect((await sup.exited).code).toBe(1);
    expect(sup.stderr).toMatch(/^prefork: error: a worker could not start: could not load the task module .*broken-tasks\.js: missing REPORTS_API_KEY\n$/);
    // The lines about the failure say the cause once (pino appended the cause's message to ours, which holds it
    // already). Each line is named in the assertion, so that a failure says which one.
    const aboutFailure = sup.logs.filter((l) => l.event === 'worker_startup_failed' || l.event === 'supervisor_start_failed');
    const failures = aboutFailure.filter((l) => l.err !== undefined);
    expect(failures.length).toBeGreaterThan(0);
    for (const l of failures) expect((l.err as { message: string }).message.match(/missing REPORTS_API_KEY/g)?.length ?? 0, JSON.stringify(l)).toBe(1);
    // The stack is logged once, by the worker that failed (it names the module's line); the primary's lines
    // about it (the relayed failure, the fatal one) say the message without repeating the stack.
    const stackOf = (l: Record<string, unknown>) => (l.err as { stack?: string } | undefined)?.stack ?? (l.error as { stack?: string } | undefined)?.stack;
    const withStack = aboutFailure.filter((l) => stackOf(l) !== undefined);
    expect(withStack.map((l) => l.role)).toEqual(withStack.map(() => 'worker'));
    expect(withStack.length).toBeGreaterThan(0);
    for (const l of withStack) expect(stackOf(l)).toContain('broken-tasks.js:');
    expect(sup.logs.filter((l) => l.event === 'worker_startup_failed' && l.role === 'primary').length).toBeGreaterThan(0);
    expect(sup.logs.find((l) => l.event === 'supervisor_start_failed')).toMatchObject({ level: 'fatal', code: 'TASK_MODULE_LOAD_FAILED', msg: expect.stringContaining('missing REPORTS_API_KEY') });
    expect(sup.workerPids().length).toBeLessThanOrEqual(2);
    for (const pid of sup.workerPids()) expect(isAlive(pid)).toBe(false);
  });

  it('a syntax error in the task module stops the start with the file and line, as node names them', async () => {
    const schema = schemaName();
    const file = taskModuleFile('export default {\n  broken: () => {\n    return 1 +;\n  },\n};\n').path;
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', file]);
    expect((await sup.exited).code).toBe(1);
    expect(sup.stderr).toBe(`prefork: error: a worker could not start: could not load the task module ${pathToFileURL(file).href}: Unexpected token ';' (at ${file}:3)\n`);
  });

  it('a bad defineTask option stops the start with its message and the INVALID_OPTION code', async () => {
    const moduleFile = taskModuleFile(`import { defineTask } from '${distIndex}';\nexport default { 'mod.bad': defineTask({ maxAttempts: 0, run: () => 1 }) };\n`);
    const sup = SupervisorProcess.start(schemaName(), ['--workers', '1', '--tasks', moduleFile.path]);
    expect((await sup.exited).code).toBe(1);
    expect(sup.stderr).toMatch(/^prefork: error: a worker could not start: could not load the task module .+: defineTask: maxAttempts must be a whole number from 1 to 1000000 \(got 0\)\n$/);
    expect(sup.events('supervisor_start_failed')).toEqual([expect.objectContaining({ code: 'INVALID_OPTION' })]);
  });

  it('a defineTask option it does not know (a typo) stops the start with its message and the INVALID_OPTION code', async () => {
    const moduleFile = taskModuleFile(`import { defineTask } from '${distIndex}';\nexport default { 'mod.typo': defineTask({ hardTimeout: 5000, run: () => 1 }) };\n`);
    const sup = SupervisorProcess.start(schemaName(), ['--workers', '1', '--tasks', moduleFile.path]);
    expect((await sup.exited).code).toBe(1);
    expect(sup.stderr).toMatch(
      /^prefork: error: a worker could not start: could not load the task module .+: defineTask: unknown option "hardTimeout" \(options: maxAttempts, .*hardTimeoutMs, .*run\)\n$/,
    );
    expect(sup.events('supervisor_start_failed')).toEqual([expect.objectContaining({ code: 'INVALID_OPTION' })]);
  });

  it('stops when a worker exits before it is ready, and a stop during start-up is not kept waiting', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--tasks', fixture('exit-at-import-tasks.js')]);
    expect((await sup.exited).code).toBe(1);
    expect(sup.stderr).toMatch(/^prefork: error: worker \d+ \(pid \d+\) exited with code 7 before it was ready\n$/);
    for (const pid of sup.workerPids()) expect(isAlive(pid)).toBe(false);

    // Workers that wait for a slow start-up hook: SIGTERM ends the start at once, as a graceful stop (exit 0).
    const slow = SupervisorProcess.start(schemaName(), ['--workers', '1', '--tasks', fixture('slow-hook-tasks.js')]);
    await slow.waitForEvent('worker_forked', 1);
    const asked = Date.now();
    slow.child.kill('SIGTERM');
    expect((await slow.exited).code).toBe(0);
    expect(Date.now() - asked).toBeLessThan(5_000);
    expect(slow.stderr).toBe('');
    expect(slow.events('supervisor_stopped_during_start')).toHaveLength(1);
    expect(slow.logs.filter((l) => ['error', 'fatal'].includes(l.level as string))).toEqual([]);
    for (const pid of slow.workerPids()) expect(isAlive(pid)).toBe(false);
  });

  it('stops with the hook error when a start-up hook throws', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('bad-hook-tasks.js')]);
    expect((await sup.exited).code).toBe(1);
    expect(sup.stderr).toContain('warm-up failed: cache server unreachable');
  });
});
