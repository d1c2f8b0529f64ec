/** `prefork inspect worker <id|pid:N>`: one worker of a live supervisor, and what its tasks do in the database. */
import type { Queryable } from '../../db/queryable.js';
import { taskApplicationName } from '../../db/application-name.js';
import { PreforkError } from '../../errors.js';
import { backendActivity, taskConnectionPattern, type BackendActivity } from '../../queue/backend-activity.js';
import { liveSupervisorFigures, type CurrentTaskFigures, type SupervisorFigures, type WorkerFigures } from '../../queue/watch-report.js';
import { exitCodes } from '../exit-codes.js';
import { count, duration, megabytes, plural } from '../format.js';
import { backendLines } from './inspect-task.js';

/** Exit code when the task, worker or supervisor asked for does not exist (the same 1 as a failed task). */
export const notFoundExitCode = exitCodes.taskFailed;

/** How the command line names a worker: its id within a supervisor, or its process id. */
export type WorkerRef = { id: number } | { pid: number };

export interface WorkerInspection {
  supervisor: { id: string; pid: number; host: string; state: string; snapshotAgeMs: number };
  worker: Omit<WorkerFigures, 'current'>;
  /** The tasks it runs, each with its connection's row of pg_stat_activity (null before it opened one). */
  current: (CurrentTaskFigures & { backend: BackendActivity | null })[];
}

export async function inspectWorker(db: Queryable, schema: string, ref: WorkerRef, supervisorId: string | undefined, leaseMs: number): Promise<WorkerInspection> {
  const { supervisor, worker } = findWorker(await liveSupervisorFigures(db, schema, leaseMs), ref, supervisorId);
  const backends = await backendActivity(db, {
    pids: worker.current.flatMap((c) => (c.backendPid ? [c.backendPid] : [])),
    namePattern: taskConnectionPattern(schema, worker.id, null),
  });
  const { current, ...figures } = worker;
  return {
    supervisor: { id: supervisor.id, pid: supervisor.pid, host: supervisor.host, state: supervisor.state, snapshotAgeMs: supervisor.snapshotAgeMs },
    worker: figures,
    current: current.map((c) => ({
      ...c,
      backend:
        backends.find((b) => c.backendPid !== null && b.pid === c.backendPid) ??
        backends.find((b) => b.applicationName === taskApplicationName(schema, worker.id, c.taskId)) ??
        null,
    })),
  };
}

function findWorker(supervisors: SupervisorFigures[], ref: WorkerRef, supervisorId: string | undefined): { supervisor: SupervisorFigures; worker: WorkerFigures } {
  const name = 'pid' in ref ? `worker pid ${ref.pid}` : `worker ${ref.id}`;
  if (supervisors.length === 0) {
    throw new PreforkError('NO_SUPERVISOR', 'no supervisor is running (start one with: prefork start)', { exitCode: exitCodes.unavailable });
  }
  let candidates = supervisors;
  if (supervisorId !== undefined) {
    candidates = supervisors.filter((s) => s.id.startsWith(supervisorId.toLowerCase()));
    if (candidates.length === 0) {
      throw new PreforkError('NOT_FOUND', `no running supervisor ${supervisorId}: running are ${supervisors.map((s) => s.id).join(', ')}`, { exitCode: notFoundExitCode });
    }
    if (candidates.length > 1) {
      throw new PreforkError('AMBIGUOUS', `--supervisor ${supervisorId} matches ${candidates.length} supervisors: give more of the id`, { exitCode: exitCodes.usage });
    }
  }
  const hits = candidates.flatMap((supervisor) =>
    supervisor.workers.filter((w) => ('pid' in ref ? w.pid === ref.pid : w.id === ref.id)).map((worker) => ({ supervisor, worker })),
  );
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new PreforkError(
      'AMBIGUOUS',
      `${name} is in ${hits.length} supervisors (${hits.map((h) => h.supervisor.id).join(', ')}): choose one with --supervisor ID, or name the worker by pid:N`,
      { exitCode: exitCodes.usage },
    );
  }
  const known = candidates.map((s) => `${s.workers.map((w) => `${w.id} (pid ${w.pid})`).join(', ') || 'none'} in supervisor ${s.id}`).join('; ');
  throw new PreforkError('NOT_FOUND', `no ${name} in the running supervisors; workers: ${known}`, { exitCode: notFoundExitCode });
}

export function renderWorker(i: WorkerInspection): string {
  const w = i.worker;
  const s = i.supervisor;
  const lines = [
    `worker ${w.id} pid ${w.pid} of supervisor ${s.id} pid ${s.pid} on ${s.host} (snapshot ${duration(s.snapshotAgeMs)} old)`,
    `  state ${w.state}, up ${duration(w.uptimeMs)}, ${plural(w.tasksDone, 'task')} done, ${count(w.failures)} failed, RSS ${megabytes(w.rss)} MB, event-loop lag ${w.loopLagMs === null ? '-' : `${Math.round(w.loopLagMs)} ms`}`,
  ];
  if (i.current.length === 0) lines.push('  idle: no task running');
  for (const c of i.current) {
    lines.push(`  task ${c.taskId} ${c.name}${c.attempt === null ? '' : ` attempt ${c.attempt}`}, running for ${duration(c.runningMs)}`);
    lines.push(...backendLines(c.backend, '    '));
  }
  return `${lines.join('\n')}\n`;
}
