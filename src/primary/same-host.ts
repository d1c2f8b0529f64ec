import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { isProcessAlive } from '../process-alive.js';
import { liveStatesSql } from '../queue/supervisors.js';

/**
 * Supervisors registered from this host whose process is gone (killed, crashed): their tasks need not wait
 * for the lease to expire. Only those whose pids this process sees (the same boot and PID namespace, `scope`):
 * a supervisor in another container on the host's network has the same host name, and pids of its own.
 */
export async function deadSupervisorsOnHost(db: Queryable, schema: string, host: string, scope: string | null, selfId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string; pid: number }>(
    `select id, pid from ${quoteIdent(schema)}.supervisors
      where host = $1 and pid_scope is not distinct from $2 and id <> $3 and state in (${liveStatesSql})`,
    [host, scope, selfId],
  );
  return rows.filter((r) => r.pid !== process.pid && !isProcessAlive(r.pid)).map((r) => r.id);
}
