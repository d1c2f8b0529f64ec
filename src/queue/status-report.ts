import type { Queryable } from '../db/queryable.js';
import { countTasksByState } from './read-tasks.js';
import { liveSupervisorFigures } from './watch-report.js';

/**
 * What `status` shows: every live supervisor with its workers, and the queue by state. The documented subset
 * of what `status --watch` reads from the supervisors' snapshots (one reader of the snapshot, in watch-report).
 */
export async function statusReport(db: Queryable, schema: string, leaseMs: number) {
  const [supervisors, queue] = await Promise.all([liveSupervisorFigures(db, schema, leaseMs), countTasksByState(db, schema)]);
  return {
    supervisors: supervisors.map(({ id, pid, host, state, startedAt, heartbeatAt, concurrency, workersWanted, tasks, workers }) => ({
      id,
      pid,
      host,
      state,
      startedAt,
      heartbeatAt,
      concurrency,
      workersWanted,
      tasks,
      workers,
    })),
    queue,
  };
}

export type StatusReport = Awaited<ReturnType<typeof statusReport>>;
