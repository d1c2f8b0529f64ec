/**
 * The worker pool of the built primary, in this process, forking real workers: what it says when a message
 * goes to a worker that has just gone.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { databaseUrl } from './support/database.js';
import { childPids, fixture, isAlive } from './support/processes.js';

type WorkerPoolModule = typeof import('../src/primary/worker-pool.js');
const workerPoolUrl = pathToFileURL(join(process.cwd(), 'dist/primary/worker-pool.js')).href;

/** The inode of the worker's end of its IPC channel (NODE_CHANNEL_FD in its environment), from /proc. */
function channelInode(pid: number): string {
  const fd = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('NODE_CHANNEL_FD='))!.split('=')[1];
  return /socket:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))![1]!;
}

/** Whether the kernel still lists that Unix socket (it stops once the socket is closed: writes to its peer fail). */
function socketListed(inode: string): boolean {
  return readFileSync('/proc/net/unix', 'utf8').split('\n').some((line) => line.trim().split(/\s+/)[6] === inode);
}

/** A pool of this process whose workers fail their start-up (their task module throws) and exit; its log in `lines`. */
async function brokenWorkerPool(lines: Record<string, unknown>[], { module = 'broken-tasks.js', startupTimeoutMs = 10_000 } = {}) {
  const { WorkerPool } = (await import(workerPoolUrl)) as WorkerPoolModule;
  const log = pino(
    { level: 'debug', formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return new WorkerPool({
    concurrency: 1,
    maxQueue: 1,
    onTaskStart: () => {},
    log,
    workerConfig: () => ({
      tasksUrl: pathToFileURL(fixture(module)).href,
      databaseUrl: databaseUrl(),
      schema: 'unused',
      concurrency: 1,
      logLevel: 'silent',
      startupTimeoutMs,
      session: {},
      heartbeatMs: 1_000,
      budgetEnforced: false,
    }),
  });
}

/** This process's children that are a worker guard (the shell of orphan-guard.ts). */
function guardPids(): number[] {
  return childPids(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith("/bin/sh\0-c\0trap '' HUP");
    } catch {
      return false;
    }
  });
}

describe('worker pool', () => {
  it('a task module whose import never finishes fails the worker\'s start within the start-up limit, saying so', async () => {
    const lines: Record<string, unknown>[] = [];
    const pool = await brokenWorkerPool(lines, { module: 'hanging-import-tasks.js', startupTimeoutMs: 1_000 });
    const failed = new Promise<Error>((resolve) => pool.on('startupFailed', (_handle: unknown, error: Error) => resolve(error)));
    const handle = pool.fork();
    onTestFinished(() => {
      if (isAlive(handle.pid)) pool.kill(handle);
      pool.close();
    });
    expect((await failed).message).toBe('the task module did not finish loading within 1000 ms (a top-level await that never settles?)');
  });

  it.skipIf(process.platform !== 'linux')('a message written to a worker that exited before the primary read its end of the channel is a debug line, not a warning', async () => {
    const lines: Record<string, unknown>[] = [];
    const pool = await brokenWorkerPool(lines);
    const exited = new Promise<void>((resolve) => pool.on('exit', () => resolve()));
    const failed = new Promise<void>((resolve) => pool.on('startupFailed', () => resolve()));
    const handle = pool.fork();
    onTestFinished(() => {
      if (isAlive(handle.pid)) pool.kill(handle);
      pool.close(); // its guard (a shell this process spawned) exits
    });
    await failed;
    // The worker exits by itself once it reported the failure (50 ms later at the earliest). This process, its
    // primary, holds its event loop until the kernel has closed the worker's end of the channel, so it has not read
    // that: the stop below is written to a closed pipe.
    const inode = channelInode(handle.pid);
    const began = Date.now();
    while (socketListed(inode) && Date.now() - began < 10_000);
    pool.retire(handle);
    await exited;
    expect(lines.filter((l) => l.event === 'worker_ipc_error')).toEqual([]);
    expect(lines.filter((l) => l.event === 'worker_ipc_closed')).toEqual([expect.objectContaining({ level: 'debug', code: 'EPIPE' })]);
  });
  it.skipIf(process.platform !== 'linux')('close() ends the guard while the process that forked the workers goes on', async () => {
    const before = new Set(guardPids());
    const pool = await brokenWorkerPool([]);
    const exited = new Promise<void>((resolve) => pool.on('exit', () => resolve()));
    const handle = pool.fork();
    onTestFinished(() => {
      if (isAlive(handle.pid)) pool.kill(handle);
      pool.close();
    });
    await expect.poll(() => guardPids().filter((pid) => !before.has(pid))).toHaveLength(1);
    const [guard] = guardPids().filter((pid) => !before.has(pid));
    await exited;
    // The worker has gone; the guard waits on, as long as this process lives, until the pool is closed.
    expect(isAlive(guard!)).toBe(true);
    pool.close();
    await expect.poll(() => isAlive(guard!), { timeout: 5_000 }).toBe(false);
  });
  it.skipIf(process.platform !== 'linux')('a guard killed again soon after its restart waits to start again, and close() during the wait starts none', async () => {
    const before = new Set(guardPids());
    const lines: Record<string, unknown>[] = [];
    const pool = await brokenWorkerPool(lines);
    const handle = pool.fork();
    onTestFinished(() => {
      if (isAlive(handle.pid)) pool.kill(handle);
      pool.close();
    });
    const newGuards = () => guardPids().filter((pid) => !before.has(pid));
    await expect.poll(newGuards).toHaveLength(1);
    const [first] = newGuards();
    process.kill(first!, 'SIGKILL');
    await expect.poll(() => lines.filter((l) => l.event === 'orphan_guard_lost')).toEqual([expect.objectContaining({ restartInMs: 0 })]);
    await expect.poll(() => newGuards().filter((pid) => pid !== first)).toHaveLength(1);
    const [second] = newGuards().filter((pid) => pid !== first);
    process.kill(second!, 'SIGKILL');
    await expect.poll(() => lines.filter((l) => l.event === 'orphan_guard_lost')).toHaveLength(2);
    expect(lines.filter((l) => l.event === 'orphan_guard_lost')[1]).toMatchObject({ restartInMs: 100 });
    pool.close();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(newGuards().filter((pid) => pid !== first && pid !== second)).toEqual([]);
    expect(lines.filter((l) => l.event === 'orphan_guard_started')).toHaveLength(2);
  });
});
