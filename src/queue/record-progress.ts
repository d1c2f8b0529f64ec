import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';

export interface ProgressReport {
  id: string;
  /** The attempt that reported it: a late report never overwrites a later attempt's. */
  attempt: number;
  progress: unknown;
}

/**
 * Records what running tasks last reported, in one statement, fenced on the claiming supervisor and the attempt.
 * Once the attempt's outcome is written (with its last progress: settle-tasks.ts), a report still on its way is
 * dropped: it cannot be newer.
 */
export async function recordProgress(db: Queryable, schema: string, supervisorId: string, reports: readonly ProgressReport[]): Promise<void> {
  if (reports.length === 0) return;
  await db.query(
    `update ${quoteIdent(schema)}.tasks t set progress = i.progress
       from jsonb_to_recordset($1::jsonb) as i(id bigint, attempt integer, progress jsonb)
      where t.id = i.id and t.state = 'running' and t.attempts = i.attempt and t.supervisor_id = $2`,
    [JSON.stringify(reports.map((r) => ({ id: r.id, attempt: r.attempt, progress: r.progress ?? null }))), supervisorId],
  );
}
