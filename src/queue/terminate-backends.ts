import type { Queryable } from '../db/queryable.js';

/**
 * Ends the server side of task connections whose worker is gone or must be stopped. The application_name
 * check keeps a recycled backend pid that now belongs to someone else out of reach.
 */
export async function terminateBackends(db: Queryable, backends: readonly { pid: number; applicationName: string }[]): Promise<number> {
  if (backends.length === 0) return 0;
  const { rows } = await db.query<{ n: number }>(
    `select count(*) filter (where pg_terminate_backend(a.pid))::int as n
       from pg_stat_activity a
       join jsonb_to_recordset($1::jsonb) as b(pid integer, application_name text)
         on a.pid = b.pid and a.application_name = b.application_name`,
    [JSON.stringify(backends.map((b) => ({ pid: b.pid, application_name: b.applicationName })))],
  );
  return rows[0]?.n ?? 0;
}
