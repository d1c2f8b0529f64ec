/**
 * The worker pool of the built primary, in this process, forking real workers: what it says when a message
 * goes to a worker that has just gone.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { databaseUrl } from './support/database.js';
import { fixture, isAlive } from './support/processes.js';

interface PoolHandle {
  pid: number;
}
interface Pool {
  on(event: 'startupFailed', listener: (handle: PoolHandle) => void): void;
  on(event: 'exit', listener: (handle: PoolHandle) => void): void;
  fork(): PoolHandle;
  retire(handle: PoolHandle): void;
  kill(handle: PoolHandle): void;
}

const workerPoolUrl = pathToFileURL(join(process.cwd(), 'dist/primary/worker-pool.js')).href;

/** Whether the process has exited (a zombie not reaped yet counts as exited); without /proc, after a second. */
function exitedSince(pid: number, began: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' && process.platform === 'linux' ? true : Date.now() - began > 1_000;
  }
}

describe('worker pool', () => {
  it('a message written to a worker that exited before the primary read its end of the channel is a debug line, not a warning', async () => {
    const { WorkerPool } = (await import(workerPoolUrl)) as { WorkerPool: new (options: unknown) => Pool };
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'debug', formatters: { level: (label) => ({ level: label }) } },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const pool = new WorkerPool({
      concurrency: 1,
      maxQueue: 1,
      onTaskStart: () => {},
      log,
      workerConfig: () => ({
        tasksUrl: pathToFileURL(fixture('broken-tasks.js')).href,
        databaseUrl: databaseUrl(),
        schema: 'unused',
        concurrency: 1,
        logLevel: 'silent',
        startupTimeoutMs: 10_000,
        session: {},
        heartbeatMs: 1_000,
        budgetEnforced: false,
      }),
    });
    const exited = new Promise<void>((resolve) => pool.on('exit', () => resolve()));
    const failed = new Promise<PoolHandle>((resolve) => pool.on('startupFailed', resolve));
    const handle = pool.fork();
    onTestFinished(() => {
      if (isAlive(handle.pid)) pool.kill(handle);
    });
    await failed;
    // The worker exits by itself once it reported the failure. This process, its primary, does not run its event
    // loop meanwhile, so it has not read that the channel closed: the stop below is written to a closed pipe.
    // The kernel closes a dead process's sockets a moment after it shows as exited (milliseconds): a second more.
    const began = Date.now();
    while (!exitedSince(handle.pid, began) && Date.now() - began < 10_000);
    const exitSeen = Date.now();
    while (Date.now() - exitSeen < 1_000);
    pool.retire(handle);
    await exited;
    expect(lines.filter((l) => l.event === 'worker_ipc_error')).toEqual([]);
    expect(lines.filter((l) => l.event === 'worker_ipc_closed')).toEqual([expect.objectContaining({ level: 'debug', code: 'EPIPE' })]);
  });
});
