/** `prefork start --metrics-port`: Prometheus metrics and a health check from the primary, scraped over HTTP. */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useTestSchema } from './support/database.js';
import { freePort, health, sample, scrape } from './support/metrics.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { taskModuleFile } from './support/tasks.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

/** Starts a supervisor with metrics on a free port; tries another port if that one was taken meanwhile. */
async function startWithMetrics(schema: string, args: string[]): Promise<{ sup: SupervisorProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const sup = SupervisorProcess.start(schema, [...args, '--metrics-port', String(port)]);
    try {
      await sup.waitForEvent('metrics_listening');
      return { sup, port };
    } catch (error) {
      const { code } = await sup.exited;
      if (attempt < 3 && code === 2 && sup.stderr.includes('in use')) continue;
      throw error;
    }
  }
}

async function send(schema: string, task: string, payload: unknown, extra: string[] = []) {
  return runCli(['send', task, JSON.stringify(payload), '--wait', ...extra], { schema });
}

describe('metrics', () => {
  it('counts outcomes, fills duration buckets, and reports workers, connections, the queue and the process', async () => {
    const schema = schemaName();
    const { sup, port } = await startWithMetrics(schema, ['--workers', '2', '--tasks', fixture('tasks.js')]);
    // Before the workers are ready: 503 (state starting), unless they were very quick.
    expect([{ status: 503, state: 'starting' }, { status: 200, state: 'running' }]).toContainEqual(await health(port).then((h) => ({ status: h.status, state: h.body.state })));
    await sup.ready();
    await expect.poll(async () => (await health(port)).status).toBe(200);
    expect((await health(port)).body).toEqual({ status: 'ok', state: 'running' });

    for (let i = 0; i < 3; i++) expect((await send(schema, 'prefork.echo', { i })).code).toBe(0);
    expect((await send(schema, 'fixture.fail', {})).code).toBe(1);
    expect((await send(schema, 'fixture.failOnce', {})).code).toBe(0);
    expect((await send(schema, 'fixture.exit', {}, ['--max-attempts', '1'])).code).toBe(1);
    expect((await send(schema, 'fixture.spin', {})).code).toBe(1);

    // Outcomes are announced as they are decided; the scrape may come a moment before the last one.
    await expect.poll(async () => sample(await scrape(port), 'prefork_tasks_total', { task: 'fixture.spin', outcome: 'timed_out' })).toBe(1);
    const m = await scrape(port);
    const tasks = (task: string, outcome: string) => sample(m, 'prefork_tasks_total', { task, outcome });
    expect(tasks('prefork.echo', 'succeeded')).toBe(3);
    expect(tasks('fixture.fail', 'failed')).toBe(1);
    expect(tasks('fixture.failOnce', 'retried')).toBe(1);
    expect(tasks('fixture.failOnce', 'succeeded')).toBe(1);
    expect(tasks('fixture.exit', 'failed')).toBe(1);

    // The histogram: every echo in the +Inf bucket and in the count, a sum, and the buckets cumulative.
    expect(sample(m, 'prefork_task_duration_seconds_count', { task: 'prefork.echo' })).toBe(3);
    expect(sample(m, 'prefork_task_duration_seconds_bucket', { task: 'prefork.echo', le: '+Inf' })).toBe(3);
    expect(sample(m, 'prefork_task_duration_seconds_bucket', { task: 'prefork.echo', le: '60' })).toBe(3);
    expect(sample(m, 'prefork_task_duration_seconds_sum', { task: 'prefork.echo' })).toBeGreaterThan(0);
    const buckets = m.filter((s) => s.name === 'prefork_task_duration_seconds_bucket' && s.labels.task === 'fixture.spin').map((s) => s.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(sample(m, 'prefork_task_duration_seconds_bucket', { task: 'fixture.spin', le: '0.5' })).toBe(0);
    expect(sample(m, 'prefork_task_duration_seconds_bucket', { task: 'fixture.spin', le: '+Inf' })).toBe(1);

    // The crash and the timeout's kill each cost a worker; both were replaced.
    expect(sample(m, 'prefork_worker_exits_total', { crashed: 'true' })).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => sample(await scrape(port), 'prefork_workers', { state: 'ready' })).toBe(2);
    const now = await scrape(port);
    expect(now.filter((s) => s.name === 'prefork_workers').reduce((n, s) => n + s.value, 0)).toBe(2);
    expect(sample(now, 'prefork_workers_wanted')).toBe(2);
    expect(sample(now, 'prefork_tasks_running')).toBe(0);

    expect(sample(now, 'prefork_db_connections_limit')).toBeGreaterThan(0);
    expect(sample(now, 'prefork_db_connections_in_use')).toBe(0);
    expect(sample(now, 'prefork_db_connections_waiting')).toBe(0);
    expect(sample(now, 'prefork_queue_tasks', { state: 'succeeded' })).toBe(4);
    expect(sample(now, 'prefork_queue_tasks', { state: 'failed' })).toBe(2);
    expect(sample(now, 'prefork_queue_tasks', { state: 'timed_out' })).toBe(1);
    expect(sample(now, 'prefork_queue_tasks', { state: 'queued' })).toBe(0);

    // Node's default process metrics, of the primary.
    expect(sample(now, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(now, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    // A paused task name shows while it is paused.
    const paused = async () => sample(await scrape(port), 'prefork_task_paused', { task: 'fixture.spin' });
    expect(await paused()).toBeUndefined();
    expect((await runCli(['pause', 'fixture.spin'], { schema })).code).toBe(0);
    await expect.poll(paused).toBe(1);
    expect((await runCli(['resume', 'fixture.spin'], { schema })).code).toBe(0);
    await expect.poll(paused).toBeUndefined();

    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });

  it('counts the ticks of task schedules: queued, and skipped while the last run is not done', async () => {
    const schema = schemaName();
    const { sup, port } = await startWithMetrics(schema, ['--workers', '2', '--tasks', fixture('scheduled-tasks.js')]);
    await sup.ready();
    const ticks = async (task: string, outcome: string) => sample(await scrape(port), 'prefork_schedule_ticks_total', { task, outcome }) ?? 0;
    await expect.poll(() => ticks('sched.slow', 'skipped')).toBeGreaterThanOrEqual(1);
    expect(await ticks('sched.slow', 'queued')).toBeGreaterThanOrEqual(1);
    await expect.poll(() => ticks('sched.tick', 'queued')).toBeGreaterThanOrEqual(1);
    // As many as the log says were queued (read around the scrape: a tick may come meanwhile).
    const logged = () => sup.events('schedule_fired').filter((l) => l.task === 'sched.tick').length;
    const before = logged();
    const counted = await ticks('sched.tick', 'queued');
    expect(counted).toBeGreaterThanOrEqual(before);
    expect(counted).toBeLessThanOrEqual(logged());
    await sup.stop();
  });

  it('counts reloads by outcome and workers that could not start: a broken deploy shows', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile(`export default { 'mod.version': () => 1 };\n`);
    const file = moduleFile.path;
    const { sup, port } = await startWithMetrics(schema, ['--workers', '1', '--tasks', file]);
    await sup.ready();
    const reloads = async (outcome: string) => sample(await scrape(port), 'prefork_reloads_total', { outcome });
    const startupFailures = async () => sample(await scrape(port), 'prefork_worker_startup_failures_total', {});
    expect([await reloads('succeeded'), await reloads('failed'), await startupFailures()]).toEqual([0, 0, 0]);
    moduleFile.write(`export default { 'mod.version': () => 2,\n`);
    expect((await runCli(['reload', '--timeout', '30000'], { schema })).code).toBe(1);
    await expect.poll(() => reloads('failed')).toBe(1);
    expect(await startupFailures()).toBe(1);
    moduleFile.write(`export default { 'mod.version': () => 2 };\n`);
    expect((await runCli(['reload', '--timeout', '30000'], { schema })).code).toBe(0);
    await expect.poll(() => reloads('succeeded')).toBe(1);
    expect([await reloads('failed'), await startupFailures()]).toEqual([1, 1]);
    await sup.stop();
  });

  it('answers /healthz 503 while stopping, and closes the port when the supervisor stopped', async () => {
    const schema = schemaName();
    const { sup, port } = await startWithMetrics(schema, ['--workers', '1', '--tasks', fixture('tasks.js'), '--shutdown-timeout', '20000']);
    await sup.ready();
    expect((await runCli(['send', 'fixture.hold', '{"ms": 3000}'], { schema })).code).toBe(0);
    await expect.poll(async () => sample(await scrape(port), 'prefork_tasks_running')).toBe(1);
    // Counted once open 0.2 s (backendReportDelayMs): the budget is not enforced here.
    await expect.poll(async () => sample(await scrape(port), 'prefork_db_connections_in_use')).toBe(1);
    expect(sample(await scrape(port), 'prefork_db_connections_peak')).toBe(1);
    sup.kill('SIGTERM');
    await expect.poll(async () => health(port)).toEqual({ status: 503, body: { status: 'unavailable', state: 'stopping' } });
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('exits 2 with one line when the metrics port is taken', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const r = await runCli(['start', '--metrics-port', String(port)], { schema: schemaName() });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`prefork: error: --metrics-port ${port} --metrics-host 127.0.0.1: cannot listen: the address is in use\n`);
      const bad = await runCli(['start', '--metrics-port', '70000'], { schema: schemaName() });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--metrics-port must be a whole number from 1 to 65535');
    } finally {
      blocker.close();
    }
  });
});
