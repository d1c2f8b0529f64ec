import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { CronSchedule } from '../schedule/cron.js';
import type { SupervisorFigures } from './watch-report.js';

export interface ScheduleFigures {
  name: string;
  cron: string;
  /** The zone the expression is read in (an IANA name, or UTC). */
  timeZone: string;
  /** The next tick, the earliest any live supervisor keeps. */
  nextAt: string | null;
  /** The last tick fired (a run queued, or skipped while the previous one was not done); null before the first. */
  lastFiredAt: string | null;
}

/** The schedules live supervisors keep, by name, with the last tick fired from the `schedules` table. */
export async function scheduleFigures(db: Queryable, schema: string, supervisors: readonly SupervisorFigures[]): Promise<ScheduleFigures[]> {
  const kept = new Map<string, ScheduleFigures>();
  for (const s of supervisors) {
    for (const { name, cron, timeZone, nextAt } of s.schedules) {
      const seen = kept.get(name);
      if (!seen) kept.set(name, { name, cron, timeZone, nextAt, lastFiredAt: null });
      else if (nextAt !== null && (seen.nextAt === null || nextAt < seen.nextAt)) seen.nextAt = nextAt;
    }
  }
  if (kept.size === 0) return [];
  const { rows } = await db.query<{ name: string; last_fired_at: Date }>(
    `select name, last_fired_at from ${quoteIdent(schema)}.schedules where name = any($1::text[])`,
    [[...kept.keys()]],
  );
  for (const r of rows) {
    const figures = kept.get(r.name)!;
    figures.lastFiredAt = r.last_fired_at.toISOString();
    // A snapshot is up to a heartbeat old: its next tick may have fired since. Then the one after is next.
    if (figures.nextAt === null || Date.parse(figures.nextAt) <= r.last_fired_at.getTime()) {
      figures.nextAt = nextAfter(figures.cron, figures.timeZone, r.last_fired_at) ?? figures.nextAt;
    }
  }
  return [...kept.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function nextAfter(cron: string, timeZone: string, after: Date): string | null {
  try {
    return CronSchedule.parse(cron, timeZone).next(after)?.toISOString() ?? null;
  } catch {
    return null; // an expression this version does not read (written by another)
  }
}
