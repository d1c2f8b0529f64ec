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
  /**
   * The last tick a live supervisor queued a run for, and the ticks skipped since because that run was not done
   * (a long run, a paused name, no supervisor serving its queue): null and 0 when no live supervisor fired one.
   */
  lastQueuedAt: string | null;
  skippedInARow: number;
}

/** The schedules live supervisors keep, by name, with the last tick fired from the `schedules` table. */
export async function scheduleFigures(db: Queryable, schema: string, supervisors: readonly SupervisorFigures[]): Promise<ScheduleFigures[]> {
  const kept = new Map<string, ScheduleFigures>();
  // Supervisors fire the ticks in turn: the latest run any queued, and the ticks skipped after it by any.
  const fired = new Map<string, { skips: { count: number; lastAt: string }[] }>();
  for (const s of supervisors) {
    for (const { name, cron, timeZone, nextAt, lastQueuedAt, skippedInARow, lastSkippedAt } of s.schedules) {
      const seen = kept.get(name) ?? { name, cron, timeZone, nextAt, lastFiredAt: null, lastQueuedAt: null, skippedInARow: 0 };
      kept.set(name, seen);
      if (nextAt !== null && (seen.nextAt === null || nextAt < seen.nextAt)) seen.nextAt = nextAt;
      if (lastQueuedAt !== null && (seen.lastQueuedAt === null || lastQueuedAt > seen.lastQueuedAt)) seen.lastQueuedAt = lastQueuedAt;
      const f = fired.get(name) ?? { skips: [] };
      fired.set(name, f);
      if (skippedInARow > 0 && lastSkippedAt !== null) f.skips.push({ count: skippedInARow, lastAt: lastSkippedAt });
    }
  }
  for (const [name, f] of fired) {
    const seen = kept.get(name)!;
    seen.skippedInARow = f.skips.filter((k) => seen.lastQueuedAt === null || k.lastAt > seen.lastQueuedAt).reduce((n, k) => n + k.count, 0);
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
