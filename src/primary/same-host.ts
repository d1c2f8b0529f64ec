import { readdirSync, readFileSync } from 'node:fs';
import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { isProcessAlive } from '../process-alive.js';
import { liveStatesSql } from '../queue/supervisors.js';
import { workerConfigEnv } from '../worker/worker-config.js';

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

/**
 * The processes of this host (as far as this process may read their /proc entries) that are workers forked by one
 * of these supervisors: the supervisor id in the config their primary handed them at fork, which their initial
 * environment keeps (/proc/PID/environ; the worker deletes it from its live environment only). None where there
 * is no /proc.
 */
export function orphanWorkerPids(supervisorIds: readonly string[]): number[] {
  if (supervisorIds.length === 0) return [];
  const ids = new Set(supervisorIds);
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const prefix = `${workerConfigEnv}=`;
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
    } catch {
      continue; // gone, or another user's
    }
    const variable = environ.split('\0').find((v) => v.startsWith(prefix));
    if (!variable) continue;
    try {
      const config = JSON.parse(variable.slice(prefix.length)) as { supervisorId?: unknown };
      if (typeof config.supervisorId === 'string' && ids.has(config.supervisorId)) pids.push(Number(entry));
    } catch {
      // not a config this version wrote
    }
  }
  return pids;
}
