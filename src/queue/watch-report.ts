/**
 * What `status --watch` shows: every live supervisor with its whole snapshot (the fields `status --json`
 * documents, plus the database connections, the prefetch buffer and the outcomes not yet written), the queue
 * by state, and the throughput of the last minute.
 */
import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import type { StartupFailure } from '../primary/fleet.js';
import type { LastReload } from '../primary/supervisor.js';
import type { RateLimit } from '../task.js';
import { countTasksByState } from './read-tasks.js';
import { leasedSupervisors, liveSupervisors, type SupervisorRow } from './supervisors.js';
import type { TaskState } from './task-row.js';

/** The window of the throughput figure. */
export const throughputWindowSeconds = 60;

export interface CurrentTaskFigures {
  taskId: string;
  name: string;
  attempt: number | null;
  runningMs: number;
  backendPid: number | null;
}

export interface WorkerFigures {
  id: number;
  pid: number;
  state: string;
  tasksDone: number;
  failures: number;
  rss: number | null;
  loopLagMs: number | null;
  uptimeMs: number | null;
  current: CurrentTaskFigures[];
}

export interface DbConnectionFigures {
  inUse: number;
  limit: number;
  waiting: number;
  peak: number;
  /** false: the budget covers every task slot, so it is not enforced and inUse counts open task connections. */
  enforced: boolean | null;
}

export interface SupervisorFigures {
  id: string;
  pid: number;
  host: string;
  state: string;
  startedAt: string;
  heartbeatAt: string;
  /** How old the snapshot is, by the database's clock. */
  snapshotAgeMs: number;
  concurrency: number | null;
  workersWanted: number | null;
  /** The named queues it claims from (`--queues`); null: every queue (or from an older prefork). */
  queues: string[] | null;
  tasks: string[];
  workers: WorkerFigures[];
  /** null until the supervisor knows its budget (or from an older prefork). */
  dbConnections: DbConnectionFigures | null;
  buffered: number | null;
  pendingOutcomes: number | null;
  /** The scheduled tasks this supervisor keeps, with their next tick. */
  schedules: { name: string; cron: string; timeZone: string; nextAt: string | null; lastQueuedAt: string | null; skippedInARow: number; lastSkippedAt: string | null }[];
  /** The task names with limits across supervisors, as this supervisor's task module sets them. */
  limits: { name: string; maxRunning: number | null; rateLimit: RateLimit | null }[];
  /** The task names paused (prefork pause), as this supervisor last read them. */
  paused: string[];
  /** How its last reload ended; null before the first (or from an older prefork). */
  lastReload: Omit<LastReload, 'seq'> | null;
  /** Why workers fail to start (the last failure, and how many in a row), while none has become ready since; else null. */
  startupFailure: StartupFailure | null;
}

export interface WatchReport {
  at: string;
  supervisors: SupervisorFigures[];
  queue: Record<TaskState, number>;
  throughput: { windowSeconds: number; finished: number; perSecond: number };
}

export async function watchReport(db: Queryable, schema: string, leaseMs: number): Promise<WatchReport> {
  // One after the other: `db` may be a single client.
  const supervisors = await liveSupervisors(db, schema, leaseMs);
  const queue = await countTasksByState(db, schema);
  const recent = await finishedRecently(db, schema);
  return {
    at: recent.now.toISOString(),
    supervisors: supervisors.map((s) => supervisorFigures(s, recent.now)),
    queue,
    throughput: { windowSeconds: throughputWindowSeconds, finished: recent.finished, perSecond: recent.finished / throughputWindowSeconds },
  };
}

/** Every live supervisor with its snapshot (for `inspect worker`). */
export async function liveSupervisorFigures(db: Queryable, schema: string, leaseMs: number): Promise<SupervisorFigures[]> {
  return (await leasedSupervisorFigures(db, schema, leaseMs)).live;
}

/** The same, and the supervisors that hold a lease though their process has exited (leasedSupervisors), for `status`. */
export async function leasedSupervisorFigures(db: Queryable, schema: string, leaseMs: number): Promise<{ live: SupervisorFigures[]; exited: SupervisorRow[] }> {
  const { live, exited } = await leasedSupervisors(db, schema, leaseMs);
  const { rows } = await db.query<{ now: Date }>('select now() as now');
  return { live: live.map((s) => supervisorFigures(s, rows[0]!.now)), exited };
}

/** Tasks that reached a final state in the window (through the partial index on finished_at). */
async function finishedRecently(db: Queryable, schema: string): Promise<{ finished: number; now: Date }> {
  const { rows } = await db.query<{ finished: number; now: Date }>(
    `select count(*)::int as finished, now() as now from ${quoteIdent(schema)}.tasks
      where finished_at > now() - $1 * interval '1 second'`,
    [throughputWindowSeconds],
  );
  return rows[0]!;
}

// The snapshot is JSON written by a supervisor, perhaps of another version: read it field by field.
type Json = Record<string, unknown>;
const object = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const numberOr = <T>(v: unknown, fallback: T): number | T => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const stringOr = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);

/** The named queues a supervisor claims from (`--queues`), as its snapshot says; null: every queue (or not said). */
export function snapshotQueues(s: SupervisorRow): string[] | null {
  const queues = object(s.snapshot).queues;
  return Array.isArray(queues) ? queues.filter((q): q is string => typeof q === 'string') : null;
}

function supervisorFigures(s: SupervisorRow, now: Date): SupervisorFigures {
  const snap = object(s.snapshot);
  const db = snap.dbConnections === null || snap.dbConnections === undefined ? null : object(snap.dbConnections);
  return {
    id: s.id,
    pid: s.pid,
    host: s.host,
    state: s.state,
    startedAt: s.started_at.toISOString(),
    heartbeatAt: s.heartbeat_at.toISOString(),
    snapshotAgeMs: Math.max(0, now.getTime() - s.heartbeat_at.getTime()),
    concurrency: numberOr(snap.concurrency, null),
    workersWanted: numberOr(snap.workersWanted, null),
    queues: snapshotQueues(s),
    tasks: s.tasks,
    workers: (Array.isArray(snap.workers) ? snap.workers : []).map(object).map(workerFigures),
    dbConnections: db && {
      inUse: numberOr(db.inUse, 0),
      limit: numberOr(db.limit, 0),
      waiting: numberOr(db.waiting, 0),
      peak: numberOr(db.peak, 0),
      enforced: typeof db.enforced === 'boolean' ? db.enforced : null,
    },
    buffered: numberOr(snap.buffered, null),
    pendingOutcomes: numberOr(snap.pendingOutcomes, null),
    schedules: (Array.isArray(snap.schedules) ? snap.schedules : []).map(object).map((x) => ({
      name: stringOr(x.name, ''),
      cron: stringOr(x.cron, ''),
      timeZone: stringOr(x.timeZone, 'UTC'),
      nextAt: typeof x.nextAt === 'string' ? x.nextAt : null,
      lastQueuedAt: typeof x.lastQueuedAt === 'string' ? x.lastQueuedAt : null,
      skippedInARow: numberOr(x.skippedInARow, 0),
      lastSkippedAt: typeof x.lastSkippedAt === 'string' ? x.lastSkippedAt : null,
    })),
    limits: (Array.isArray(snap.limits) ? snap.limits : []).map(object).map((x) => {
      const rate = x.rateLimit === null || x.rateLimit === undefined ? null : object(x.rateLimit);
      return {
        name: stringOr(x.name, ''),
        maxRunning: numberOr(x.maxRunning, null),
        rateLimit: rate && { count: numberOr(rate.count, 0), intervalMs: numberOr(rate.intervalMs, 0) },
      };
    }),
    paused: (Array.isArray(snap.paused) ? snap.paused : []).filter((n): n is string => typeof n === 'string'),
    lastReload: lastReloadFigures(snap.lastReload),
    startupFailure: startupFailureFigures(snap.startupFailure),
  };
}

function startupFailureFigures(v: unknown): SupervisorFigures['startupFailure'] {
  if (v === null || typeof v !== 'object') return null;
  const f = object(v);
  return typeof f.message === 'string' ? { message: f.message, at: stringOr(f.at, ''), failures: numberOr(f.failures, 1) } : null;
}

function lastReloadFigures(v: unknown): SupervisorFigures['lastReload'] {
  if (v === null || typeof v !== 'object') return null;
  const r = object(v);
  if (r.outcome !== 'succeeded' && r.outcome !== 'failed') return null;
  return { outcome: r.outcome, error: typeof r.error === 'string' ? r.error : null, finishedAt: stringOr(r.finishedAt, '') };
}

function workerFigures(w: Json): WorkerFigures {
  return {
    id: numberOr(w.id, 0),
    pid: numberOr(w.pid, 0),
    state: stringOr(w.state, 'unknown'),
    tasksDone: numberOr(w.tasksDone, 0),
    failures: numberOr(w.failures, 0),
    rss: numberOr(w.rss, null),
    loopLagMs: numberOr(w.loopLagMs, null),
    uptimeMs: numberOr(w.uptimeMs, null),
    current: (Array.isArray(w.current) ? w.current : []).map(object).map((c) => ({
      taskId: String(c.taskId ?? ''),
      name: stringOr(c.name, '?'),
      attempt: numberOr(c.attempt, null),
      runningMs: numberOr(c.runningMs, 0),
      backendPid: numberOr(c.backendPid, null),
    })),
  };
}
