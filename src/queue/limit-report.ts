import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import type { RateLimit } from '../task.js';
import type { SupervisorFigures } from './watch-report.js';

export interface LimitFigures {
  name: string;
  maxRunning: number | null;
  rateLimit: RateLimit | null;
  /** Attempts of the name running now, on every supervisor. */
  running: number;
  /** Tasks of the name waiting in the queue (due or not). */
  queued: number;
  /** Attempts claimed within the rate's latest interval (null without a rate limit). */
  startedInWindow: number | null;
}

/** The limits live supervisors keep, by name (as the first supervisor sets them), with the database's counts. */
export async function limitFigures(db: Queryable, schema: string, supervisors: readonly SupervisorFigures[]): Promise<LimitFigures[]> {
  const kept = new Map<string, LimitFigures>();
  for (const s of supervisors) {
    for (const { name, maxRunning, rateLimit } of s.limits) {
      if (!kept.has(name)) kept.set(name, { name, maxRunning, rateLimit, running: 0, queued: 0, startedInWindow: rateLimit ? 0 : null });
    }
  }
  if (kept.size === 0) return [];
  const q = quoteIdent(schema);
  const names = [...kept.keys()];
  const counts = await db.query<{ name: string; running: number; queued: number }>(
    `select name, count(*) filter (where state = 'running')::int as running, count(*) filter (where state = 'queued')::int as queued
       from ${q}.tasks where state in ('queued', 'running') and name = any($1::text[]) group by name`,
    [names],
  );
  for (const r of counts.rows) Object.assign(kept.get(r.name)!, { running: r.running, queued: r.queued });
  const windows = await db.query<{ name: string; starts: Date[]; now: Date }>(`select name, starts, now() as now from ${q}.task_limits where name = any($1::text[])`, [names]);
  for (const r of windows.rows) {
    const figures = kept.get(r.name)!;
    if (!figures.rateLimit) continue;
    const since = r.now.getTime() - figures.rateLimit.intervalMs;
    figures.startedInWindow = r.starts.filter((t) => t.getTime() > since).length;
  }
  return [...kept.values()].sort((a, b) => a.name.localeCompare(b.name));
}
