/**
 * The database misbehaves, for real: a server with few connections, an outage made by a TCP proxy, a query
 * past its statement timeout, a database that does not exist. Supervisors are real subprocesses.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded/postgres.js';
import { createQueue, databaseUrl, query, useTestSchema } from './support/database.js';
import { fixture, runCli, startWithFixtures as start, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { countByState, insertTasks, waitForFinal } from './support/tasks.js';
import { freePort } from './support/metrics.js';
import { TcpProxy } from './support/tcp-proxy.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

/** New connections refused, live ones cut (the listening socket closes only once they are gone). */
async function outage(proxy: TcpProxy): Promise<void> {
  const refused = proxy.refuse();
  proxy.cutAll();
  await refused;
}

describe('a server with max_connections 20', () => {
  let server: EmbeddedPostgres;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prefork-maxconn-'));
    server = await startEmbeddedPostgres({ dataDir: join(dir, 'pgdata'), settings: { max_connections: '20', fsync: 'off' } });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('8 workers × concurrency 4 run 300 connection-holding tasks within the budget; none fails', async () => {
    const schema = schemaName();
    const url = server.connectionString;
    const sup = start(schema, ['--workers', '8', '--concurrency', '4', '--database-url', url], { DATABASE_URL: url });
    await sup.ready(60_000);
    const budget = sup.events('db_budget')[0]!.maxDbConnections as number;
    expect(budget).toBeLessThan(20);
    const { default: pg } = await import('pg');
    const probe = new pg.Client({ connectionString: url, application_name: 'budget probe' });
    await probe.connect();
    try {
      await probe.query(`insert into "${schema}".tasks (name, payload) select 'fixture.hold', '{"ms": 50}' from generate_series(1, 300)`);
      let peak = 0;
      for (;;) {
        const { rows } = await probe.query<{ n: number; open: number }>(
          `select (select count(*)::int from "${schema}".tasks where state in ('queued', 'running')) as open,
                  (select count(*)::int from pg_stat_activity where application_name like $1) as n`,
          [`prefork:${schema} w%`],
        );
        peak = Math.max(peak, rows[0]!.n);
        if (rows[0]!.open === 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const { rows } = await probe.query<{ state: string; n: number }>(`select state, count(*)::int as n from "${schema}".tasks group by state`);
      expect(rows).toEqual([{ state: 'succeeded', n: 300 }]);
      expect(peak).toBeGreaterThan(1);
      expect(peak).toBeLessThanOrEqual(budget);
      console.log(`budget ${budget}: peak ${peak} task connections observed in pg_stat_activity`);
    } finally {
      await probe.query(`drop schema if exists "${schema}" cascade`);
      await probe.end();
    }
    expect(sup.stdout()).not.toMatch(/too many clients/);
    await sup.stop();
  });
});

describe('outages', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await TcpProxy.start(databaseUrl());
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('the database goes away for 3 s during 200 tasks: every task succeeds, no worker crashes, outage and recovery are logged', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '3', '--database-url', proxy.url(), '--max-attempts', '10']);
    await sup.ready();
    await insertTasks(schema, 'fixture.hold', Array.from({ length: 200 }, () => ({ ms: 20 })));
    await expect.poll(async () => (await countByState(schema)).succeeded ?? 0).toBeGreaterThan(20);
    await outage(proxy);
    await new Promise((r) => setTimeout(r, 3_000));
    await proxy.restore();
    await waitForFinal(schema, 200, 60_000);
    expect(await countByState(schema)).toEqual({ succeeded: 200 });
    expect(sup.events('worker_crashed')).toEqual([]);
    expect(sup.events('listener_lost').length).toBe(1);
    await sup.waitForEvent('listener_reconnected');
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout);
    expect(status.supervisors[0].workers.map((w: { state: string }) => w.state)).toEqual(['ready', 'ready', 'ready']);
    await sup.stop();
    // About 12 s alone; its own budget: after the outage the tasks may wait out a retry backoff (up to 2-4 s
    // for a task that failed twice during it), on a machine that may be running other test files beside it.
  }, 120_000);

  it('/readyz answers 503 while the database is unreachable and 200 once it is back; /healthz stays 200 throughout', async () => {
    const schema = schemaName();
    const port = await freePort();
    const sup = start(schema, ['--workers', '1', '--database-url', proxy.url(), '--metrics-port', String(port)]);
    await sup.ready();
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    await expect.poll(() => get('/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', state: 'running', database: 'reachable', workersReady: 1, workersWanted: 1 },
    });
    await outage(proxy);
    try {
      await expect.poll(() => get('/readyz'), { timeout: 10_000 }).toMatchObject({ status: 503, body: { status: 'not_ready', state: 'running', database: 'unreachable' } });
      expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok', state: 'running' } });
    } finally {
      await proxy.restore();
    }
    await expect.poll(() => get('/readyz'), { timeout: 15_000 }).toMatchObject({ status: 200, body: { database: 'reachable' } });
    await sup.stop();
  }, 60_000);

  it('/readyz says the database is reachable while a start waits for its workers (not unreachable on every deploy)', async () => {
    const schema = schemaName();
    const port = await freePort();
    const sup = SupervisorProcess.start(schema, ['--tasks', fixture('slow-hook-tasks.js'), '--workers', '1', '--metrics-port', String(port)]);
    await sup.waitForEvent('worker_forked');
    const get = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    await expect.poll(get).toEqual({
      status: 503,
      body: { status: 'not_ready', state: 'starting', database: 'reachable', workersReady: 0, workersWanted: 1 },
    });
    sup.kill('SIGKILL');
    await sup.exited;
  });

  it("a schedule's ticks during an outage fold into one run once the database is back; none is queued twice", async () => {
    const schema = schemaName();
    // A 6 s lease (longer than the outage): a claim the outage cut is given back 6 to 8 s later, not 10 to 15.
    const sup = SupervisorProcess.start(schema, ['--tasks', fixture('scheduled-tasks.js'), '--workers', '2', '--lease', '6000', '--database-url', proxy.url()]);
    await sup.ready();
    const ticks = async () =>
      (await query<{ at: string }>(`select payload->>'scheduledAt' as at from "${schema}".tasks where name = 'sched.tick' order by id`)).map((r) => Date.parse(r.at));
    await expect.poll(async () => (await ticks()).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    await outage(proxy);
    await sup.waitForEvent('schedule_fire_failed');
    await new Promise((r) => setTimeout(r, 4_500));
    await proxy.restore();
    const before = (await ticks()).length;
    // Within 30 s: a claim whose reply the outage cut is given back first (faults.test, lost replies).
    await expect.poll(async () => (await ticks()).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(before + 2);
    await sup.stop();

    const at = await ticks();
    expect(new Set(at).size, 'a tick queued twice').toBe(at.length);
    // Every 2 s, except one gap where the outage's ticks became a single run.
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps.filter((g) => g !== 2_000)).toHaveLength(1);
    expect(gaps.find((g) => g !== 2_000)).toBeGreaterThanOrEqual(4_000);
  }, 60_000);

  it('start waits for a database that is not up yet (as one started beside it), and gives up after --connect-retries', async () => {
    await proxy.refuse();
    try {
      const schema = schemaName();
      const sup = start(schema, ['--workers', '1', '--database-url', proxy.url(), '--connect-retries', '20']);
      await sup.waitForEvent('database_connect_retry', 2);
      await proxy.restore();
      await sup.ready();
      expect((await runCli(['send', 'prefork.echo', '{"up":1}', '--wait'], { schema })).stdout).toBe('{"up":1}\n');
      await sup.stop();

      await proxy.refuse();
      const never = start(schemaName(), ['--workers', '1', '--database-url', proxy.url(), '--connect-retries', '2']);
      expect((await never.exited).code).toBe(3);
      expect(never.stderr).toMatch(/^prefork: error: could not use the database: connect ECONNREFUSED .*\(gave up after 3 attempts in \d+\.\d s\)\n$/);
      expect(never.events('database_connect_retry')).toHaveLength(2);
      // The cause in the log is the refusal, without pg's stack (it is the driver's code, no clue to anything).
      expect(never.events('supervisor_start_failed')).toEqual([
        expect.objectContaining({ level: 'fatal', code: 'DATABASE_UNREACHABLE', err: { type: 'Error', message: expect.stringContaining('ECONNREFUSED'), code: 'ECONNREFUSED' } }),
      ]);
    } finally {
      await proxy.restore();
    }
  }, 60_000);

  it('workers started while the database is down wait for it, then become ready', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2', '--database-url', proxy.url()]);
    await sup.ready();
    await outage(proxy);
    try {
      // A replacement worker starts during the outage.
      process.kill(sup.workerPids()[0]!, 'SIGKILL');
      await sup.waitForEvent('worker_waiting_for_database');
    } finally {
      await proxy.restore();
    }
    await sup.waitForEvent('worker_ready', 3);
    const r = await runCli(['send', 'prefork.echo', '{"back":true}', '--wait'], { schema });
    expect(r.stdout).toBe('{"back":true}\n');
    await sup.stop();
  });
});

describe('timeouts and bad configuration', () => {
  it('a query past the statement timeout fails clearly, and the worker serves the next task', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1', '--statement-timeout', '300']);
    await sup.ready();
    const slow = await runCli(['send', 'fixture.dbSleep', '{"seconds": 2}', '--max-attempts', '1', '--wait', '--json'], { schema });
    expect(slow.code).toBe(1);
    expect(JSON.parse(slow.stdout)).toMatchObject({ status: 'failed', error: { code: '57014', message: expect.stringMatching(/statement timeout/) } });
    const next = await runCli(['send', 'fixture.backendPid', '--wait', '--json'], { schema });
    expect(next.code).toBe(0);
    await sup.stop();
  });

  it("a command whose database session ends under it says so in one line and exits 3", async () => {
    const schema = schemaName();
    await createQueue(schema);
    // The command's read waits on a lock the test holds; then the server ends its session.
    const holder = new pg.Client({ connectionString: databaseUrl() });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(`lock table "${schema}".tasks in access exclusive mode`);
      const listing = runCli(['tasks'], { schema });
      let terminated = false;
      await expect
        .poll(async () => {
          const rows = await query<{ ok: boolean }>(
            `select pg_terminate_backend(pid) as ok from pg_stat_activity
              where pid <> pg_backend_pid() and wait_event_type = 'Lock' and query like $1`,
            [`%"${schema}".tasks%`],
          );
          terminated ||= rows.some((r) => r.ok);
          return terminated;
        }, { timeout: 15_000 })
        .toBe(true);
      const r = await listing;
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^prefork: error: lost the database \(server terminated the connection \(admin shutdown\)\): terminating connection due to administrator command\n$/);
    } finally {
      await holder.end();
    }
  });

  it("the database password is not in the workers' environment, nor in what a task starts", async () => {
    const schema = schemaName();
    const url = new URL(databaseUrl());
    url.password = 'hunter2-secret';
    // Trust authentication: the server ignores the password, the supervisor still carries it to its workers.
    const sup = start(schema, ['--workers', '1', '--database-url', url.toString()]);
    try {
      await sup.waitForEvent('supervisor_ready');
      const r = await runCli(['send', 'fixture.env', '--wait', '--json'], { schema });
      expect(r.code, r.stderr).toBe(0);
      const { own, child } = JSON.parse(r.stdout).result as { own: Record<string, string>; child: Record<string, string> };
      expect(Object.keys(own).length).toBeGreaterThan(3);
      expect(Object.keys(child).length).toBeGreaterThan(3);
      expect(JSON.stringify(own)).not.toContain('hunter2-secret');
      expect(JSON.stringify(child)).not.toContain('hunter2-secret');
      // Tasks still connect with it.
      expect((await runCli(['send', 'fixture.backendPid', '--wait'], { schema })).code).toBe(0);
    } finally {
      await sup.stop();
    }
  });

  it('an unknown database: one clear error, exit 3, no retry storm, no password anywhere', async () => {
    const schema = schemaName();
    const proxy = await TcpProxy.start(databaseUrl());
    try {
      const url = proxy.url({ database: 'no_such_database', password: 'hunter2-secret' });
      const sup = SupervisorProcess.start(schema, ['--workers', '2', '--database-url', url]);
      const exit = await sup.exited;
      expect(exit.code).toBe(3);
      expect(sup.stderr).toMatch(/^prefork: error: .*no_such_database.*\n$/);
      expect(sup.stderr + sup.stdout()).not.toContain('hunter2-secret');
      expect(proxy.accepted).toBeLessThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });
});
