import type { Queryable } from '../db/queryable.js';

export interface BackendRef {
  /** null: not known (not reported yet); the backend is found by its application_name alone, which must be whole. */
  pid: number | null;
  applicationName: string;
}

/**
 * Cancels the running query of (or, with `terminate`, ends) the server side of task connections. The
 * application_name check keeps a recycled backend pid that now belongs to someone else out of reach.
 * Returns how many backends were signalled.
 */
export async function signalBackends(db: Queryable, backends: readonly BackendRef[], mode: 'cancel' | 'terminate'): Promise<number> {
  if (backends.length === 0) return 0;
  const fn = mode === 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
  const { rows } = await db.query<{ n: number }>(
    `select count(*) filter (where ${fn}(a.pid))::int as n
       from pg_stat_activity a
       join jsonb_to_recordset($1::jsonb) as b(pid integer, application_name text)
         on a.application_name = b.application_name
        -- By name alone only in this database: another database on the server may run a queue of the same schema.
        and (a.pid = b.pid or (b.pid is null and a.datname = current_database()))`,
    [JSON.stringify(backends.map((b) => ({ pid: b.pid, application_name: b.applicationName })))],
  );
  return rows[0]?.n ?? 0;
}
