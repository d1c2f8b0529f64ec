import type { Queryable } from '../db/queryable.js';
import { countTasksByState } from './read-tasks.js';
import { liveSupervisors } from './supervisors.js';

/** What `status` shows: every live supervisor with its workers, and the queue by state. */
export async function statusReport(db: Queryable, schema: string, leaseMs: number) {
  const [supervisors, queue] = await Promise.all([liveSupervisors(db, schema, leaseMs), countTasksByState(db, schema)]);
  return {
    supervisors: supervisors.map((s) => {
      const snap = (s.snapshot ?? {}) as { workers?: unknown[]; concurrency?: number; workersWanted?: number };
      return {
        id: s.id,
        pid: s.pid,
        host: s.host,
        state: s.state,
        startedAt: s.started_at.toISOString(),
        heartbeatAt: s.heartbeat_at.toISOString(),
        concurrency: snap.concurrency ?? null,
        workersWanted: snap.workersWanted ?? null,
        tasks: s.tasks,
        workers: (snap.workers ?? []) as {
          id: number;
          pid: number;
          state: string;
          tasksDone: number;
          failures: number;
          rss: number | null;
          loopLagMs: number | null;
          current: { taskId: string; name: string; runningMs: number }[];
        }[],
      };
    }),
    queue,
  };
}

export type StatusReport = Awaited<ReturnType<typeof statusReport>>;
