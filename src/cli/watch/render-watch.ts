/** One frame of `status --watch`, as lines of plain text (the screen or the plain output adds the rest). */
import type { SupervisorFigures, WatchReport, WorkerFigures } from '../../queue/watch-report.js';
import { count, duration, megabytes } from '../format.js';

export interface FrameContext {
  schema: string;
  intervalMs: number;
  /** The last refresh failed: shown on top, with the last good report (if any) below. */
  error: string | null;
  /** Whether Ctrl-C is the way out (a terminal). */
  interactive: boolean;
}

export function renderWatch(report: WatchReport | null, context: FrameContext): string[] {
  const at = report ? new Date(report.at) : new Date();
  const lines = [
    `prefork status · schema ${context.schema} · every ${duration(context.intervalMs)} · ${at.toISOString().slice(11, 19)} UTC${context.interactive ? ' · Ctrl-C to quit' : ''}`,
  ];
  if (context.error) lines.push(`! ${context.error} (retrying)`);
  if (!report) return lines;
  const q = report.queue;
  lines.push(
    `queue: ${count(q.queued)} queued, ${count(q.running)} running, ${count(q.succeeded)} succeeded, ${count(q.failed)} failed, ${count(q.timed_out)} timed out, ${count(q.cancelled)} cancelled`,
  );
  const paused = [...new Set(report.supervisors.flatMap((s) => s.paused))].sort();
  if (paused.length > 0) lines.push(`paused: ${paused.join(', ')} (prefork resume NAME)`);
  const t = report.throughput;
  lines.push(`throughput: ${t.perSecond.toFixed(t.perSecond < 10 ? 2 : 1)} tasks/s over the last ${t.windowSeconds} s (${count(t.finished)} finished)`);
  lines.push('');
  if (report.supervisors.length === 0) lines.push('no supervisor is running (start one with: prefork start)');
  for (const s of report.supervisors) lines.push(...supervisorLines(s));
  return lines;
}

function supervisorLines(s: SupervisorFigures): string[] {
  const up = duration(Date.parse(s.heartbeatAt) - Date.parse(s.startedAt));
  const workers = `${s.workers.length}${s.workersWanted !== null && s.workersWanted !== s.workers.length ? `/${s.workersWanted}` : ''} worker${s.workers.length === 1 && s.workersWanted === null ? '' : 's'}`;
  const concurrency = s.concurrency !== null && s.concurrency !== 1 ? ` × ${s.concurrency}` : '';
  const c = s.dbConnections;
  const connections = c
    ? `db connections ${c.inUse}/${c.limit} in use${c.waiting ? `, ${c.waiting} waiting` : ''}${c.enforced === false ? '' : ` (peak ${c.peak})`}`
    : 'db connections -';
  const lines = [
    `supervisor ${s.id} pid ${s.pid} on ${s.host}: ${s.state}, ${workers}${concurrency}, up ${up}`,
    `  ${connections} · buffered ${s.buffered ?? '-'} · outcomes to write ${s.pendingOutcomes ?? '-'} · snapshot ${duration(s.snapshotAgeMs)} old`,
    `  ${'WORKER'.padStart(6)} ${'PID'.padStart(7)}  ${'STATE'.padEnd(20)} ${'DONE'.padStart(7)} ${'FAILED'.padStart(7)} ${'RSS(MB)'.padStart(8)} ${'LAG(ms)'.padStart(8)}  CURRENT`,
  ];
  if (s.workers.length === 0) lines.push('  (no workers)');
  for (const w of s.workers) lines.push(workerLine(w));
  return lines;
}

function workerLine(w: WorkerFigures): string {
  const current = w.current.map((c) => `${c.name}#${c.taskId} ${duration(c.runningMs)}`).join(', ') || '-';
  return (
    `  ${String(w.id).padStart(6)} ${String(w.pid).padStart(7)}  ${w.state.padEnd(20)} ${count(w.tasksDone).padStart(7)} ${count(w.failures).padStart(7)} ` +
    `${megabytes(w.rss).padStart(8)} ${(w.loopLagMs === null ? '-' : String(Math.round(w.loopLagMs))).padStart(8)}  ${current}`
  );
}
