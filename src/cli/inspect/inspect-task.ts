/** `prefork inspect task <id>`: one task with every attempt, and where it runs now. */
import type { Queryable } from '../../db/queryable.js';
import { taskApplicationName } from '../../db/application-name.js';
import type { SerializedError } from '../../errors.js';
import { backendActivity, taskConnectionPattern, type BackendActivity } from '../../queue/backend-activity.js';
import { getTask } from '../../queue/read-tasks.js';
import { liveSupervisorFigures } from '../../queue/watch-report.js';
import { count, duration } from '../format.js';
import { errorLines, jsonText } from './render-parts.js';

export interface TaskInspection {
  id: string;
  task: string;
  queue: string;
  status: string;
  priority: number;
  key: string | null;
  attempts: number;
  maxAttempts: number | null;
  payload: unknown;
  result: unknown;
  error: InspectedError | null;
  /** What the task last reported with ctx.progress (in any attempt), or null. */
  progress: unknown;
  createdAt: string;
  runAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  supervisorId: string | null;
  workerPid: number | null;
  history: {
    attempt: number;
    outcome: string;
    workerPid: number | null;
    supervisorId: string | null;
    startedAt: string | null;
    finishedAt: string;
    durationMs: number | null;
    error: InspectedError | null;
  }[];
  /** Where a running task runs: null unless its state is `running`. */
  running: {
    supervisor: { id: string; pid: number; host: string; state: string; snapshotAgeMs: number } | null;
    /** null while the task waits in the supervisor's buffer for a free worker (or the snapshot is older than the task). */
    worker: { id: number; pid: number; state: string } | null;
    attempt: number;
    runningMs: number | null;
    /** The task's own connection, as pg_stat_activity shows it; null before it opened one. */
    backend: BackendActivity | null;
  } | null;
}

export interface InspectedError {
  name: string;
  message: string;
  code: string | null;
  stack: string | null;
}

export async function inspectTask(db: Queryable, schema: string, id: string, leaseMs: number): Promise<TaskInspection | null> {
  const row = await getTask(db, schema, id);
  if (!row) return null;
  const inspection: TaskInspection = {
    id: row.id,
    task: row.name,
    queue: row.queue,
    status: row.state,
    priority: row.priority,
    key: row.key,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    payload: row.payload,
    result: row.result,
    error: inspectedError(row.error),
    progress: row.progress ?? null,
    createdAt: row.created_at.toISOString(),
    runAt: row.run_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    supervisorId: row.supervisor_id,
    workerPid: row.worker_pid,
    history: (row.history ?? []).map((h) => ({
      attempt: h.attempt,
      outcome: h.outcome,
      workerPid: h.workerPid,
      supervisorId: h.supervisorId,
      startedAt: isoOrNull(h.startedAt),
      finishedAt: isoOrNull(h.finishedAt) ?? h.finishedAt,
      durationMs: h.startedAt ? Date.parse(h.finishedAt) - Date.parse(h.startedAt) : null,
      error: inspectedError(h.error),
    })),
    running: null,
  };
  if (row.state !== 'running') return inspection;

  const supervisors = await liveSupervisorFigures(db, schema, leaseMs);
  const supervisor = supervisors.find((s) => s.id === row.supervisor_id) ?? null;
  const worker = supervisor?.workers.find((w) => w.current.some((c) => c.taskId === row.id) || (row.worker_pid !== null && w.pid === row.worker_pid)) ?? null;
  const current = worker?.current.find((c) => c.taskId === row.id) ?? null;
  const backends = await backendActivity(db, {
    pids: current?.backendPid ? [current.backendPid] : [],
    namePattern: taskConnectionPattern(schema, null, row.id),
  });
  const backend =
    backends.find((b) => b.pid === current?.backendPid) ??
    backends.find((b) => worker !== null && b.applicationName === taskApplicationName(schema, worker.id, row.id)) ??
    backends[0] ??
    null;
  inspection.running = {
    supervisor: supervisor && { id: supervisor.id, pid: supervisor.pid, host: supervisor.host, state: supervisor.state, snapshotAgeMs: supervisor.snapshotAgeMs },
    worker: worker && { id: worker.id, pid: worker.pid, state: worker.state },
    attempt: row.attempts,
    // As of the snapshot, which is up to a heartbeat old: plus the time since it was published.
    runningMs:
      current && supervisor ? current.runningMs + supervisor.snapshotAgeMs : (row.started_at ? Math.max(0, Date.now() - row.started_at.getTime()) : null),
    backend,
  };
  return inspection;
}

/** The history's timestamps come from jsonb (`2024-05-01T10:00:00.123456+00:00`): print them as the rest. */
function isoOrNull(text: string | null | undefined): string | null {
  if (!text) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? text : new Date(ms).toISOString();
}

export function inspectedError(error: SerializedError | null | undefined): InspectedError | null {
  if (!error) return null;
  return { name: error.name, message: error.message, code: error.code ?? null, stack: error.stack ?? null };
}

export function renderTask(t: TaskInspection): string {
  const lines: string[] = [];
  const attempts = `attempt ${t.attempts}${t.maxAttempts === null ? '' : ` of ${t.maxAttempts}`}`;
  lines.push(`task ${t.id} ${t.task} (queue ${t.queue}, priority ${t.priority}${t.key === null ? '' : `, key ${t.key}`}): ${t.status.replace('_', ' ')}, ${attempts}`);
  const due = Date.parse(t.runAt) > Date.now() && t.status === 'queued' ? `, due ${t.runAt} (in ${duration(Date.parse(t.runAt) - Date.now())})` : '';
  lines.push(`  created ${t.createdAt}${due}`);
  if (t.startedAt) lines.push(`  started ${t.startedAt}${t.finishedAt ? `, finished ${t.finishedAt} (${duration(Date.parse(t.finishedAt) - Date.parse(t.startedAt))})` : ''}`);
  lines.push(`  payload: ${jsonText(t.payload)}`);
  if (t.progress !== null) lines.push(`  progress: ${jsonText(t.progress)}`);
  if (t.running) lines.push(...runningLines(t.running));
  if (t.history.length > 0) {
    lines.push('  history:');
    for (const h of t.history) {
      const span = h.startedAt ? `${h.startedAt} → ${h.finishedAt} (${duration(h.durationMs)})` : `→ ${h.finishedAt}`;
      lines.push(`    #${h.attempt} ${h.outcome.padEnd(9)} worker pid ${h.workerPid ?? '-'}, supervisor ${h.supervisorId ?? '-'}, ${span}`);
      if (h.error) lines.push(...errorLines(h.error, '       ', h === t.history.at(-1) ? 8 : 0));
    }
  }
  if (t.status === 'succeeded') lines.push(`  result: ${jsonText(t.result)}`);
  else if (t.error && t.history.length === 0) lines.push('  last error:', ...errorLines(t.error, '    ', 8));
  return `${lines.join('\n')}\n`;
}

function runningLines(r: NonNullable<TaskInspection['running']>): string[] {
  const lines: string[] = [];
  const s = r.supervisor;
  const where = s ? `supervisor ${s.id} pid ${s.pid} on ${s.host}` : 'a supervisor that is not live (its lease ran out: another supervisor will take the task back)';
  if (r.worker) lines.push(`  running on ${where}, worker ${r.worker.id} pid ${r.worker.pid}, for ${duration(r.runningMs)}`);
  else if (s) lines.push(`  claimed by ${where}, waiting for a free worker (as of its snapshot ${duration(s.snapshotAgeMs)} ago)`);
  else lines.push(`  claimed by ${where}`);
  lines.push(...backendLines(r.backend, '  '));
  return lines;
}

export function backendLines(b: BackendActivity | null, indent: string): string[] {
  if (!b) return [`${indent}no database connection open`];
  const wait = b.waitEventType || b.waitEvent ? `waiting on ${b.waitEventType ?? '?'}:${b.waitEvent ?? '?'}` : 'not waiting';
  const lines = [
    `${indent}backend ${b.pid} (${b.applicationName}): ${b.state ?? 'state hidden'}, ${wait}, query for ${duration(b.queryMs)}${b.xactMs === null ? '' : `, transaction for ${duration(b.xactMs)}`}`,
  ];
  if (b.query) lines.push(`${indent}  ${b.state === 'active' ? 'query' : 'last query'}: ${oneLine(b.query)}`);
  return lines;
}

function oneLine(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max)}… (${count(flat.length - max)} more characters; --json for all)`;
}
