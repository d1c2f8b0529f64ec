import type { Queryable } from '../db/queryable.js';
import { countTasksByState } from './read-tasks.js';
import { limitFigures } from './limit-report.js';
import { pausedTasks } from './paused-tasks.js';
import { scheduleFigures } from './schedule-report.js';
import { leasedSupervisorFigures } from './watch-report.js';

/**
 * What `status` shows: every live supervisor with its workers, those killed on this host whose lease has not run
 * out yet, the queue by state, the scheduled tasks, the limited ones and the paused ones. The documented subset
 * of what `status --watch` reads from the supervisors' snapshots (one reader of the snapshot, in watch-report).
 */
export async function statusReport(db: Queryable, schema: string, leaseMs: number) {
  const [{ live: supervisors, exited }, queue] = await Promise.all([leasedSupervisorFigures(db, schema, leaseMs), countTasksByState(db, schema)]);
  const schedules = await scheduleFigures(db, schema, supervisors);
  const limits = await limitFigures(db, schema, supervisors);
  const paused = (await pausedTasks(db, schema)).map((p) => ({ name: p.name, pausedAt: p.pausedAt.toISOString(), reason: p.reason }));
  return {
    supervisors: supervisors.map(({ id, pid, host, state, startedAt, heartbeatAt, concurrency, workersWanted, queues, tasks, workers, lastReload, startupFailure }) => ({
      id,
      pid,
      host,
      state,
      startedAt,
      heartbeatAt,
      concurrency,
      workersWanted,
      queues,
      tasks,
      workers,
      lastReload,
      startupFailure,
    })),
    /** Killed on this host (SIGKILL, the OOM killer): gone, though their lease has not run out yet. */
    exited: exited.map((s) => ({ id: s.id, pid: s.pid, host: s.host, heartbeatAt: s.heartbeat_at.toISOString() })),
    queue,
    schedules,
    limits,
    paused,
  };
}

export type StatusReport = Awaited<ReturnType<typeof statusReport>>;
