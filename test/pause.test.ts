/** `prefork pause` / `resume`: no supervisor starts tasks of a paused name; they wait queued until resumed. */
import { describe, expect, it } from 'vitest';
import { useClients } from './support/clients.js';
import { query, useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { insertTasks } from './support/tasks.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
const { client } = useClients();

const count = async (schema: string, name: string, state: string) =>
  (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where name = $1 and state = $2`, [name, state]))[0]!.n;

describe('pause and resume', () => {
  it('a paused name waits queued on every supervisor, its claimed tasks go back, the others run; resume runs them', async () => {
    const schema = schemaName();
    // A buffer of 20 claimed tasks per supervisor: they must go back to the queue, not run, once the name is paused.
    const start = () => SupervisorProcess.start(schema, ['--tasks', fixture('pause-tasks.js'), '--workers', '2', '--prefetch', '20']);
    const sups = [start(), start()];
    await Promise.all(sups.map((s) => s.ready()));
    const prefork = client(schema);
    await insertTasks(schema, 'pause.stamp', Array.from({ length: 60 }, () => ({ ms: 200 })));
    await expect.poll(() => count(schema, 'pause.stamp', 'succeeded'), { timeout: 10_000 }).toBeGreaterThanOrEqual(4);

    const paused = await runCli(['pause', 'pause.stamp', '--reason', 'provider down'], { schema });
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/^pause\.stamp: paused, \d+ tasks queued\n$/);
    const pausedAt = Date.now();
    expect(JSON.parse((await runCli(['pause', 'pause.stamp', '--json'], { schema })).stdout).results).toEqual([
      { name: 'pause.stamp', outcome: 'already_paused', queued: expect.any(Number) },
    ]);
    // What runs finishes; nothing of the name starts any more, on either supervisor.
    await expect.poll(() => count(schema, 'pause.stamp', 'running'), { timeout: 10_000 }).toBe(0);
    // Other names run meanwhile, sent through the queue or directly.
    await insertTasks(schema, 'pause.other', [{ i: 1 }, { i: 2 }]);
    expect(await prefork.run('pause.other', { i: 3 }, { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded' });
    await expect.poll(() => count(schema, 'pause.other', 'succeeded'), { timeout: 10_000 }).toBe(3);
    // A paused task sent with run() is not handed to a worker either: it waits in the queue (at a priority above
    // the queued ones, so that only the pause keeps it from a free worker).
    const [queuedBefore, doneBefore] = [await count(schema, 'pause.stamp', 'queued'), await count(schema, 'pause.stamp', 'succeeded')];
    const waiting = prefork.run('pause.stamp', { ms: 0 }, { priority: 10, timeoutMs: 30_000 });
    await expect.poll(() => count(schema, 'pause.stamp', 'queued'), { timeout: 10_000 }).toBe(queuedBefore + 1);
    // Submitted after it, on the same channel: once this has run, the paused one was handled, and it waits.
    expect(await prefork.run('pause.other', { i: 4 }, { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded' });
    expect(await count(schema, 'pause.stamp', 'running')).toBe(0);
    expect(await count(schema, 'pause.stamp', 'succeeded')).toBe(doneBefore);
    const started = (await query<{ result: number }>(`select result from "${schema}".tasks where name = 'pause.stamp' and state = 'succeeded'`)).map((r) => r.result);
    // Each supervisor's 20 buffered tasks went back: far fewer ran than 60 - queued, and none started after the pause took effect.
    for (const at of started) expect(at).toBeLessThan(pausedAt + 500);
    expect(await count(schema, 'pause.stamp', 'queued')).toBe(61 - started.length);

    // send --wait that gives up says why the task waits.
    const sent = await runCli(['send', 'pause.stamp', '{}', '--wait', '--timeout', '300'], { schema });
    expect(sent.code).toBe(124);
    expect(sent.stderr).toMatch(/^prefork: task \d+ is still queued after 300 ms \(pause\.stamp is paused: provider down; prefork resume pause\.stamp\)\n$/);

    const status = await runCli(['status'], { schema });
    expect(status.stdout).toMatch(/\npaused pause\.stamp since \S+Z: provider down \(prefork resume pause\.stamp\)\n/);
    expect(JSON.parse((await runCli(['status', '--json'], { schema })).stdout).paused).toEqual([
      { name: 'pause.stamp', pausedAt: expect.any(String), reason: 'provider down' },
    ]);

    const resumed = await runCli(['resume', 'pause.stamp'], { schema });
    expect(resumed.stdout).toMatch(/^pause\.stamp: resumed, \d+ tasks queued\n$/);
    expect(await waiting).toMatchObject({ status: 'succeeded' });
    await expect.poll(() => count(schema, 'pause.stamp', 'succeeded'), { timeout: 30_000 }).toBe(62);
    expect(await prefork.resume('pause.stamp')).toBe('not_paused');
    expect(await prefork.pause('pause.other')).toBe('paused');
    expect(await prefork.pause('pause.other')).toBe('already_paused');
    expect(await prefork.resume('pause.other')).toBe('resumed');
    expect((await runCli(['pause', ''], { schema })).code).toBe(2);
    // A name no supervisor offers (a typo) is paused, as one may be ahead of its deploy, with a warning.
    const typo = await runCli(['pause', 'pause.stmap'], { schema });
    expect(typo).toMatchObject({ code: 0, stdout: 'pause.stmap: paused, 0 tasks queued\n' });
    expect(typo.stderr).toMatch(/^prefork: warning: no supervisor has offered a task named "pause\.stmap" on this database \(they know [^)]*\bpause\.stamp\b[^)]*\)\n$/);
    expect((await runCli(['resume', 'pause.stmap'], { schema })).stderr).toBe('');
    await Promise.all(sups.map((s) => s.stop()));
  });

  it("a run() sent right after pause() returned waits queued, though the supervisor on this host may not have heard of the pause yet", async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--tasks', fixture('tasks.js')]);
    await sup.ready();
    const prefork = client(schema);
    // The direct path is open: a run goes over the supervisor's socket.
    expect(await prefork.run('prefork.echo', { warm: 1 }, { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded' });
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) {
      await prefork.pause('prefork.echo');
      runs.push(prefork.run('prefork.echo', { i }, { timeoutMs: 300 }).catch((error: { code?: string }) => error.code));
      expect(await runs[i]).toBe('TIMEOUT');
      await prefork.resume('prefork.echo');
      await expect.poll(() => count(schema, 'prefork.echo', 'succeeded'), { timeout: 10_000 }).toBe(i + 2);
    }
    await sup.stop();
  });

  it('a claim leaves out a name paused in the database that the supervisor has not heard of yet, limited names too', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', fixture('limited-tasks.js')]);
    await sup.ready();
    const prefork = client(schema);
    // Paused by a row alone, with no control NOTIFY: as a pause committed while its NOTIFY is still on the way.
    await query(`insert into "${schema}".paused_tasks (name) values ('free.echo'), ('limited.two')`);
    const echo = await prefork.send('free.echo', { paused: true });
    const limited = await prefork.send('limited.two', { ms: 1 });
    // Sent after them: once it ran, the supervisor has claimed since the paused ones were queued.
    const marker = await prefork.run('prefork.sleep', { ms: 1 }, { timeoutMs: 10_000 });
    expect(marker.status).toBe('succeeded');
    expect((await prefork.get(echo))?.status).toBe('queued');
    expect((await prefork.get(limited))?.status).toBe('queued');
    await sup.stop();
  });

  it('on a schema no supervisor ever ran on: pause warns (and makes it, ahead of a deploy); resume makes nothing, exit 3', async () => {
    const schema = schemaName();
    const schemaExists = async () => (await query(`select 1 from pg_namespace where nspname = $1`, [schema])).length === 1;
    const resumed = await runCli(['resume', 'roadmap.generate'], { schema });
    expect(resumed).toEqual({
      code: 3,
      stdout: '',
      stderr: `prefork: error: no prefork queue in schema "${schema}" of this database: nothing was ever started or sent there (prefork start --schema ${schema} creates it)\n`,
    });
    expect(await schemaExists()).toBe(false);
    const paused = await runCli(['pause', 'roadmap.generate'], { schema });
    expect(paused).toEqual({
      code: 0,
      stdout: 'roadmap.generate: paused, 0 tasks queued\n',
      stderr: `prefork: warning: no supervisor has ever run on schema "${schema}" of this database; paused for when one does (prefork start --schema ${schema})\n`,
    });
    expect(await schemaExists()).toBe(true);
    expect((await runCli(['resume', 'roadmap.generate'], { schema })).stdout).toBe('roadmap.generate: resumed, 0 tasks queued\n');
  });
});
