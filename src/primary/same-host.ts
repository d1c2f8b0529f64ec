import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { isProcessAlive } from '../process-alive.js';
import { liveStatesSql } from '../queue/supervisors.js';

/**
 * Supervisors registered from this host whose process is gone (killed, crashed): their tasks need not wait
 * for the lease to expire.
 */
export async function deadSupervisorsOnHost(db: Queryable, schema: string, host: string, selfId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string; pid: number }>(
    `select id, pid from ${quoteIdent(schema)}.supervisors where host = $1 and id <> $2 and state in (${liveStatesSql})`,
    [host, selfId],
  );
  return rows.filter((r) => r.pid !== process.pid && !isProcessAlive(r.pid)).map((r) => r.id);
}
