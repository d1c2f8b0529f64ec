import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';

/**
 * Remembers the task names a supervisor can run, so that `send` can refuse a name nobody knows, with the attempts
 * each gets when its row sets none (shown as the task's maximum).
 */
export async function rememberTaskNames(db: Queryable, schema: string, tasks: readonly { name: string; maxAttempts: number }[]): Promise<void> {
  await db.query(
    `insert into ${quoteIdent(schema)}.known_tasks (name, max_attempts)
     select * from unnest($1::text[], $2::int[])
     on conflict (name) do update set last_seen_at = now(), max_attempts = excluded.max_attempts`,
    [tasks.map((t) => t.name), tasks.map((t) => t.maxAttempts)],
  );
}

/** A task row's maximum attempts: its own, else what the supervisors last offered for its name (SQL, on `alias`). */
export function maxAttemptsOf(schema: string, alias: string): string {
  return `coalesce(${alias}.max_attempts, (select k.max_attempts from ${quoteIdent(schema)}.known_tasks k where k.name = ${alias}.name))`;
}

/**
 * Whether `name` may be sent: true when a supervisor has offered it, or when no supervisor ever registered
 * names on this database (a queue filled before its first start). Returns the known names for the error.
 */
export async function checkTaskName(db: Queryable, schema: string, name: string): Promise<{ ok: boolean; known: string[] }> {
  const { rows } = await db.query<{ name: string }>(`select name from ${quoteIdent(schema)}.known_tasks order by name`);
  const known = rows.map((r) => r.name);
  return { ok: known.length === 0 || known.includes(name), known };
}
