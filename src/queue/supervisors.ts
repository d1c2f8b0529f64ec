import { hostname } from 'node:os';
import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { isProcessAlive, pidScope } from '../process-alive.js';

export type SupervisorState = 'starting' | 'running' | 'stopping' | 'stopped' | 'lost';

/** The states of a supervisor that holds a lease (SQL, for `state in (…)`): one that may hold tasks or soon will. */
export const liveStatesSql = `'starting', 'running', 'stopping'`;

export interface SupervisorRow {
  id: string;
  host: string;
  pid: number;
  /** Where `pid` means something (process-alive.ts, pidScope); null from a supervisor of an earlier version. */
  pid_scope: string | null;
  state: SupervisorState;
  started_at: Date;
  heartbeat_at: Date;
  stopped_at: Date | null;
  tasks: string[];
  snapshot: unknown;
}

export async function registerSupervisor(
  db: Queryable,
  schema: string,
  s: { id: string; host: string; pid: number; pidScope: string | null },
): Promise<void> {
  await db.query(`insert into ${quoteIdent(schema)}.supervisors (id, host, pid, pid_scope, state) values ($1, $2, $3, $4, 'starting')`, [
    s.id,
    s.host,
    s.pid,
    s.pidScope,
  ]);
}

/**
 * Renews the lease and publishes what `status` shows. Returns the state the row had: `lost` means another
 * supervisor presumed this one dead (and took its tasks back); the row is live again from now on. A row that
 * says `stopped` stays so, and one past `starting` does not go back to it: a renewal still in flight when a
 * later one was written must not undo it.
 */
export async function heartbeat(
  db: Queryable,
  schema: string,
  id: string,
  update: { state: SupervisorState; tasks: readonly string[]; snapshot: unknown; socketPath?: string | null },
): Promise<SupervisorState | null> {
  const q = quoteIdent(schema);
  const { rows } = await db.query<{ previous: SupervisorState }>(
    `update ${q}.supervisors s
        set heartbeat_at = now(), state = $2, tasks = $3::text[], snapshot = $4::jsonb, socket_path = $5,
            stopped_at = case when $2 = 'stopped' then now() else null end
       from (select state from ${q}.supervisors where id = $1 for update) previous
      where s.id = $1 and previous.state <> 'stopped' and ($2 <> 'starting' or previous.state = 'starting')
     returning previous.state as previous`,
    [id, update.state, update.tasks, JSON.stringify(update.snapshot), update.socketPath ?? null],
  );
  return rows[0]?.previous ?? null;
}

/**
 * A durable commit that writes WAL (an update of the supervisor's own row that changes nothing), so that
 * everything committed before it is on disk once it returns: see `ClaimedInsert.flushWithOutcome`. A commit
 * that writes no WAL (a bare `select`) is never flushed, so it would prove nothing. Throws when the row is gone.
 */
export async function flushCommitted(db: Queryable, schema: string, id: string): Promise<void> {
  const { rowCount } = await db.query(`update ${quoteIdent(schema)}.supervisors set heartbeat_at = heartbeat_at where id = $1`, [id]);
  if (rowCount !== 1) throw new Error(`supervisor ${id} has no row in ${schema}.supervisors: nothing was written to flush`);
}

/** Supervisors that hold a live lease, less those `exited` (exitedHere) and those `lost`. */
export async function liveSupervisors(db: Queryable, schema: string, leaseMs: number): Promise<SupervisorRow[]> {
  return (await leasedSupervisors(db, schema, leaseMs)).live;
}

/**
 * Supervisors whose lease has not run out: `live`, and `exited`, those this process can tell are gone (exitedHere):
 * a primary killed by SIGKILL or the OOM killer keeps its row until its lease runs out, but not its process.
 */
export async function leasedSupervisors(db: Queryable, schema: string, leaseMs: number): Promise<{ live: SupervisorRow[]; exited: SupervisorRow[] }> {
  const { rows } = await db.query<SupervisorRow>(
    `select * from ${quoteIdent(schema)}.supervisors
      where state in (${liveStatesSql}) and heartbeat_at > now() - $1 * interval '1 millisecond'
      order by started_at`,
    [leaseMs],
  );
  const exited = rows.filter(exitedHere);
  return { live: rows.filter((r) => !exited.includes(r)), exited };
}

/** Whether this process sees the pids of `row`'s supervisor: same host name, same boot and PID namespace (pidScope). */
export function sharesPids(row: Pick<SupervisorRow, 'host' | 'pid_scope'>): boolean {
  return row.host === hostname() && (row.pid_scope ?? null) === pidScope();
}

/** A supervisor whose pids this process sees (sharesPids) and whose process is gone. */
export function exitedHere(row: Pick<SupervisorRow, 'host' | 'pid_scope' | 'pid'>): boolean {
  return sharesPids(row) && !isProcessAlive(row.pid);
}

/** Forgets supervisors that stopped or were lost long ago. */
export async function pruneSupervisors(db: Queryable, schema: string, olderThanMs: number): Promise<void> {
  await db.query(
    `delete from ${quoteIdent(schema)}.supervisors
      where state in ('stopped', 'lost') and coalesce(stopped_at, heartbeat_at) < now() - $1 * interval '1 millisecond'`,
    [olderThanMs],
  );
}

/**
 * The direct-submission sockets of the running supervisors on this host with a fresh heartbeat, those that
 * run `taskName` first, the most recently heard from first.
 */
export async function localSockets(db: Queryable, schema: string, host: string, taskName: string): Promise<string[]> {
  const { rows } = await db.query<{ socket_path: string }>(
    `select socket_path from ${quoteIdent(schema)}.supervisors
      where host = $1 and state = 'running' and socket_path is not null and heartbeat_at > now() - interval '1 minute'
      order by $2 = any(tasks) desc, heartbeat_at desc`,
    [host, taskName],
  );
  return rows.map((r) => r.socket_path);
}
