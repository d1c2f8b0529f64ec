import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';

/** Remembers the task names a supervisor can run, so that `send` can refuse a name nobody knows. */
export async function rememberTaskNames(db: Queryable, schema: string, names: readonly string[]): Promise<void> {
  await db.query(
    `insert into ${quoteIdent(schema)}.known_tasks (name) select unnest($1::text[])
     on conflict (name) do update set last_seen_at = now()`,
    [names],
  );
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
