/**
 * Task connections as the server sees them: their rows of pg_stat_activity, found by backend pid or by the
 * application name every task connection carries (`prefork:<schema> w<workerId> t<taskId>`).
 */
import type { Queryable } from '../db/queryable.js';

export interface BackendActivity {
  pid: number;
  applicationName: string;
  /** active, idle, idle in transaction, …; null when the server hides it from this role. */
  state: string | null;
  waitEventType: string | null;
  waitEvent: string | null;
  /** The statement running, or the last one when idle (`<insufficient privilege>` for another role's backend). */
  query: string | null;
  queryStart: string | null;
  /** How long the current (or last) statement has run. */
  queryMs: number | null;
  xactStart: string | null;
  xactMs: number | null;
  backendStart: string | null;
}

/** Backends with one of `pids`, or whose application name matches the POSIX regular expression `namePattern`. */
export async function backendActivity(db: Queryable, where: { pids?: readonly number[]; namePattern?: string | null }): Promise<BackendActivity[]> {
  const { rows } = await db.query<{
    pid: number;
    application_name: string;
    state: string | null;
    wait_event_type: string | null;
    wait_event: string | null;
    query: string | null;
    query_start: Date | null;
    query_ms: number | null;
    xact_start: Date | null;
    xact_ms: number | null;
    backend_start: Date | null;
  }>(
    `select pid, application_name, state, wait_event_type, wait_event, query, query_start, xact_start, backend_start,
            (extract(epoch from clock_timestamp() - query_start) * 1000)::float8 as query_ms,
            (extract(epoch from clock_timestamp() - xact_start) * 1000)::float8 as xact_ms
       from pg_stat_activity
      where pid = any($1::int[]) or ($2::text is not null and application_name ~ $2::text)
      order by backend_start, pid`,
    [where.pids ?? [], where.namePattern ?? null],
  );
  return rows.map((r) => ({
    pid: r.pid,
    applicationName: r.application_name,
    state: r.state,
    waitEventType: r.wait_event_type,
    waitEvent: r.wait_event,
    query: r.query,
    queryStart: r.query_start?.toISOString() ?? null,
    queryMs: r.query_ms === null ? null : Math.round(r.query_ms),
    xactStart: r.xact_start?.toISOString() ?? null,
    xactMs: r.xact_ms === null ? null : Math.round(r.xact_ms),
    backendStart: r.backend_start?.toISOString() ?? null,
  }));
}

/** The application names of one worker's task connections (`taskId`: of one task; worker `null`: any worker). */
export function taskConnectionPattern(schema: string, workerId: number | null, taskId: string | null): string {
  return `^prefork:${schema} w${workerId ?? '[0-9]+'} t${taskId ?? '[0-9]+'}$`;
}
