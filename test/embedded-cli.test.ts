/**
 * Zero set-up: with no database configured, `prefork start` runs the embedded PostgreSQL in ./.prefork and
 * the other commands find it there. Each test runs the CLI in a fresh working directory, without DATABASE_URL.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { isProcessAlive, readStateFile, writeStateFile, type EmbeddedState } from '../src/embedded/state-file.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

useProcessLeakGuard();

/** No database configured: what a new user's shell looks like (the suite's global setup may have set one). */
const noDatabase = { DATABASE_URL: undefined, PREFORK_DATA_DIR: undefined, PREFORK_SCHEMA: undefined };
const noSupervisorHere = (stateFile: string, start = 'npx prefork start') =>
  `prefork: error: no database configured and no prefork supervisor is running here (${stateFile}): ` +
  `start one with "${start}", or pass --database-url / set DATABASE_URL\n`;
/** Above any pid_max: a process that cannot exist. */
const DEAD_PID = 2 ** 31 - 2;

const cwds: string[] = [];
const postgresPids: number[] = [];

async function workDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-cli-'));
  cwds.push(dir);
  return dir;
}

// Every embedded server a test saw is gone afterwards; the working directories are removed unless it failed.
afterEach(async (ctx: TestContext) => {
  const leaked = postgresPids.splice(0).filter(isProcessAlive);
  for (const pid of leaked) process.kill(pid, 'SIGQUIT');
  const dirs = cwds.splice(0);
  if (ctx.task.result?.state === 'fail') console.error(`kept ${dirs.join(', ')} for the failed test "${ctx.task.name}"`);
  else await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  expect(leaked, 'embedded postmasters left running').toEqual([]);
});

function start(cwd: string, args: string[], options: { detached?: boolean } = {}): SupervisorProcess {
  return SupervisorProcess.start('prefork', args, noDatabase, { cwd, ...options });
}

function cli(cwd: string, args: string[]) {
  return runCli(args, { cwd, env: noDatabase });
}

async function runningState(cwd: string): Promise<EmbeddedState> {
  const state = await readStateFile(path.join(cwd, '.prefork', 'state.json'));
  expect(state, 'state file').not.toBeNull();
  postgresPids.push(state!.postgresPid);
  return state!;
}

async function query<Row extends object>(connectionString: string, text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('prefork start without a database', () => {
  it('runs the embedded PostgreSQL: send, status and stop find it, and stop leaves nothing running', async () => {
    const cwd = await workDir();
    const dataDir = path.join(cwd, '.prefork', 'pgdata');
    const sup = start(cwd, ['--workers', '2', '--tasks', fixture('tasks.js')]);
    await sup.ready();
    const state = await runningState(cwd);
    expect(state).toMatchObject({ version: 1, dataDir, supervisorPid: sup.pid });
    expect(sup.events('embedded_postgres_started')).toEqual([
      expect.objectContaining({ pid: sup.pid, postgresPid: state.postgresPid, dataDir, initialised: true }),
    ]);
    expect(sup.events('database_selected')).toEqual([expect.objectContaining({ source: 'embedded', dataDir, database: state.connectionString })]);

    expect(await cli(cwd, ['send', 'prefork.echo', '{"hi":1}', '--wait'])).toEqual({ code: 0, stdout: '{"hi":1}\n', stderr: '' });
    // Tasks get their connection (ctx.db) to the same server.
    const backend = await cli(cwd, ['send', 'fixture.backendPid', '--wait']);
    expect(backend.code, backend.stderr).toBe(0);
    expect(JSON.parse(backend.stdout)).toMatchObject({ backendPid: expect.any(Number), workerPid: expect.any(Number) });
    const status = await cli(cwd, ['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { supervisors: { pid: number }[] }).supervisors.map((s) => s.pid)).toEqual([sup.pid]);

    // A second supervisor here would share the data dir: refused, in one line, before it touches anything.
    const second = await cli(cwd, ['start', '--workers', '1']);
    expect(second).toEqual({
      code: 3,
      stdout: '',
      stderr:
        `prefork: error: another prefork supervisor (pid ${sup.pid}) is running here with the data dir .prefork/pgdata: ` +
        'use it (prefork send, status, stop), stop it with "npx prefork stop", or give this one a --data-dir in another directory\n',
    });

    const stop = await cli(cwd, ['stop']);
    expect(stop, stop.stderr).toMatchObject({ code: 0, stderr: 'prefork: asked 1 supervisor to stop\nprefork: stopped\n' });
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    expect([state.postgresPid, ...sup.workerPids()].filter(isProcessAlive)).toEqual([]);
    expect(sup.events('embedded_postgres_stopped')).toHaveLength(1);
    // A clean stop logs nothing at warn or worse (a publish after the pool ended said heartbeat_failed).
    expect(sup.logs.filter((l) => ['warn', 'error', 'fatal'].includes(l.level))).toEqual([]);
    expect(existsSync(path.join(cwd, '.prefork', 'state.json'))).toBe(false);
    expect(existsSync(path.join(cwd, '.prefork', 'supervisor.lock'))).toBe(false);
    expect(await cli(cwd, ['status'])).toEqual({ code: 3, stdout: '', stderr: noSupervisorHere('.prefork/state.json') });
  });

  it('keeps the queue between runs: a task sent before a stop runs after the next start', async () => {
    const cwd = await workDir();
    const first = start(cwd, ['--workers', '1']);
    await first.ready();
    const sent = await cli(cwd, ['send', 'prefork.echo', '{"kept":true}', '--delay', '1500']);
    expect(sent.code, sent.stderr).toBe(0);
    await runningState(cwd);
    expect((await cli(cwd, ['stop'])).code).toBe(0);
    expect(await first.exited).toEqual({ code: 0, signal: null });

    const next = start(cwd, ['--workers', '1']);
    await next.ready();
    expect(next.events('embedded_postgres_started')).toEqual([expect.objectContaining({ initialised: false })]);
    const { connectionString } = await runningState(cwd);
    await expect
      .poll(() => query(connectionString, 'select state, result from prefork.tasks where id = $1', [sent.stdout.trim()]), { timeout: 10_000, interval: 100 })
      .toEqual([{ state: 'succeeded', result: { kept: true } }]);
    expect(await next.stop()).toEqual({ code: 0, signal: null });
  });

  it('SIGKILL of the primary takes the embedded server and the workers with it; the next start recovers', async () => {
    const cwd = await workDir();
    const sup = start(cwd, ['--workers', '2']);
    await sup.ready();
    const killed = await runningState(cwd);
    const workers = sup.workerPids();
    sup.kill('SIGKILL');
    await sup.exited;
    await expect.poll(() => [killed.postgresPid, ...workers].filter(isProcessAlive), { timeout: 10_000, interval: 50 }).toEqual([]);
    // The state file stayed behind, but names nobody alive: it does not count.
    expect(await cli(cwd, ['send', 'prefork.echo', '{}'])).toEqual({ code: 3, stdout: '', stderr: noSupervisorHere('.prefork/state.json') });

    const next = start(cwd, ['--workers', '1']);
    await next.ready();
    expect(next.events('stale_state_file')).toEqual([expect.objectContaining({ supervisorPid: sup.pid, postgresPid: killed.postgresPid })]);
    const state = await runningState(cwd);
    expect(state.supervisorPid).toBe(next.pid);
    expect(state.postgresPid).not.toBe(killed.postgresPid);
    expect(await cli(cwd, ['send', 'prefork.echo', '{"after":"kill"}', '--wait'])).toMatchObject({ code: 0, stdout: '{"after":"kill"}\n' });
    expect(await next.stop()).toEqual({ code: 0, signal: null });
  });

  it('the embedded server killed under a running supervisor is started again on the same socket: commands and tasks go on', async () => {
    const cwd = await workDir();
    const sup = start(cwd, ['--workers', '1']);
    await sup.ready();
    const before = await runningState(cwd);
    process.kill(before.postgresPid, 'SIGKILL');
    await sup.waitForLog((l) => l.event === 'embedded_postgres_restarted', 30_000);
    expect(sup.events('embedded_postgres_exited')).toEqual([expect.objectContaining({ signal: 'SIGKILL', postgresPid: before.postgresPid })]);
    const after = await runningState(cwd);
    expect(after).toMatchObject({ supervisorPid: sup.pid, connectionString: before.connectionString });
    expect(after.postgresPid).not.toBe(before.postgresPid);
    expect(isProcessAlive(after.postgresPid)).toBe(true);
    expect(await cli(cwd, ['send', 'prefork.echo', '{"after":"restart"}', '--wait'])).toMatchObject({ code: 0, stdout: '{"after":"restart"}\n' });
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
    expect(isProcessAlive(after.postgresPid)).toBe(false);
  });

  it('Ctrl-C (SIGINT to the whole process group) drains the running task before the database stops', async () => {
    const cwd = await workDir();
    // A shell runs a foreground job in a process group of its own, and Ctrl-C signals the whole group.
    const sup = start(cwd, ['--workers', '1', '--tasks', fixture('tasks.js')], { detached: true });
    await sup.ready();
    const state = await runningState(cwd);
    const sent = await cli(cwd, ['send', 'fixture.dbSleep', '{"seconds": 1.5}']);
    expect(sent.code, sent.stderr).toBe(0);
    const sleeping = "select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep%' and state = 'active'";
    await expect.poll(async () => (await query<{ n: number }>(state.connectionString, sleeping))[0]!.n, { interval: 50 }).toBe(1);

    process.kill(-sup.pid, 'SIGINT');
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    expect(sup.events('signal_received')).toEqual([expect.objectContaining({ signal: 'SIGINT' })]);
    expect(sup.events('embedded_postgres_exited'), 'the server stopped before it was asked to').toEqual([]);
    expect(isProcessAlive(state.postgresPid)).toBe(false);

    // The task finished on the database, in its first attempt: look at the data dir.
    const server = await startEmbeddedPostgres({ dataDir: state.dataDir });
    try {
      expect(await query(server.connectionString, 'select state, attempts, result from prefork.tasks where id = $1', [sent.stdout.trim()])).toEqual([
        { state: 'succeeded', attempts: 1, result: expect.objectContaining({ slept: 1.5 }) },
      ]);
    } finally {
      await server.stop();
    }
  });
});

describe('start with a data dir that cannot be one', () => {
  it('a file where the data dir or one of its parents should be: one line, exit 2, nothing started', async () => {
    const cwd = await workDir();
    await writeFile(path.join(cwd, 'afile'), 'mine');
    expect(await cli(cwd, ['start', '--data-dir', 'afile'])).toEqual({ code: 2, stdout: '', stderr: 'prefork: error: --data-dir afile: it is a file, not a directory\n' });
    expect(await cli(cwd, ['start', '--data-dir', 'afile/sub/pg'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'prefork: error: --data-dir afile/sub/pg: afile is a file, not a directory\n',
    });
    expect(await readFile(path.join(cwd, 'afile'), 'utf8')).toBe('mine');
  });
});

describe('a second start beside a running one', () => {
  it('names the --data-dir the other commands need when the running one does not use the default', async () => {
    const cwd = await workDir();
    // Held by a live process (this one) for db/pg: what a supervisor started with --data-dir db/pg leaves.
    await mkdir(path.join(cwd, 'db'), { recursive: true });
    const holder = { pid: process.pid, dataDir: path.join(cwd, 'db', 'pg'), since: new Date().toISOString() };
    await writeFile(path.join(cwd, 'db', 'supervisor.lock'), `${JSON.stringify(holder)}\n`);
    expect(await cli(cwd, ['start', '--workers', '1', '--data-dir', 'db/pg'])).toEqual({
      code: 3,
      stdout: '',
      stderr:
        `prefork: error: another prefork supervisor (pid ${process.pid}) is running here with the data dir db/pg: ` +
        'use it (prefork send, status, stop with --data-dir db/pg), stop it with "npx prefork stop --data-dir db/pg", or give this one a --data-dir in another directory\n',
    });
  });
});

describe('send, status and stop without a database', () => {
  it('say in one line, exit 3, that no supervisor runs here, and what to run', async () => {
    const cwd = await workDir();
    for (const args of [['send', 'prefork.echo', '{}'], ['status'], ['stop']]) {
      expect(await cli(cwd, args), args.join(' ')).toEqual({ code: 3, stdout: '', stderr: noSupervisorHere('.prefork/state.json') });
    }
    expect(await cli(cwd, ['send', 'prefork.echo', '{}', '--data-dir', 'db/pg'])).toEqual({
      code: 3,
      stdout: '',
      stderr: noSupervisorHere('db/state.json', 'npx prefork start --data-dir db/pg'),
    });

    // A state file whose processes are gone (the machine rebooted, say) is no supervisor either.
    await writeStateFile(path.join(cwd, '.prefork', 'state.json'), {
      version: 1,
      connectionString: 'postgres://postgres@localhost:5432/postgres?host=%2Fnowhere',
      dataDir: path.join(cwd, '.prefork', 'pgdata'),
      postgresPid: DEAD_PID,
      supervisorPid: DEAD_PID,
      startedAt: new Date().toISOString(),
    });
    expect(await cli(cwd, ['status'])).toEqual({ code: 3, stdout: '', stderr: noSupervisorHere('.prefork/state.json') });

    const both = await runCli(['status', '--data-dir', 'db/pg'], { cwd, env: { ...noDatabase, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' } });
    expect(both).toEqual({
      code: 2,
      stdout: '',
      stderr: 'prefork: error: --data-dir is for the embedded PostgreSQL, which is not used when DATABASE_URL is given\n',
    });
  });
});
