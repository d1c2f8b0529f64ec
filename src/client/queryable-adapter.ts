import type { CompiledQuery } from 'kysely';
import type { Queryable } from '../db/queryable.js';
import { PreforkError } from '../errors.js';
import type { AddTaskOptions } from '../queue/add-task.js';
import { addOptionKeys, assertOptionKeys } from '../queue/task-input.js';

/** Something that can run SQL: a pg Client/PoolClient/Pool, or a Kysely instance or transaction. */
export type Executor = Queryable | { executeQuery: (query: CompiledQuery) => Promise<{ rows: unknown[] }> };

/** `db` for send()/sendMany() (and ctx.send): none, a pg client or pool, or Kysely (INVALID_OPTION). */
export function assertExecutor(db: unknown): void {
  if (db === undefined || db === null) return;
  const d = db as { query?: unknown; executeQuery?: unknown };
  if (typeof d.query !== 'function' && typeof d.executeQuery !== 'function') {
    throw new PreforkError('INVALID_OPTION', 'db must be a pg client or pool, or a Kysely instance or transaction', { exitCode: 2 });
  }
}

/**
 * A send's options (Client.send, ctx.send), checked: only the add options and `db` (a typo is refused, not
 * ignored), `db` an executor; null is none. The add options' values are checked where the task is added.
 */
export function sendOptions(options: unknown): { db: Executor | undefined; addOptions: AddTaskOptions } {
  assertOptionKeys(options, ['db', ...addOptionKeys]);
  const { db, ...addOptions } = (options ?? {}) as AddTaskOptions & { db?: Executor | null };
  assertExecutor(db);
  return { db: db ?? undefined, addOptions };
}

/** Lets the queue's SQL run on the application's own connection or transaction. */
export function toQueryable(executor: Executor): Queryable {
  if ('executeQuery' in executor && typeof executor.executeQuery === 'function') {
    const kysely = executor;
    return {
      query: async (text: string, values?: unknown[]) => {
        // The application's process, which made `executor` with kysely: its index is loaded already (not the
        // worker's single-file kysely, kysely-module.ts).
        const { CompiledQuery } = await import('kysely');
        const result = await kysely.executeQuery(CompiledQuery.raw(text, values ?? []));
        return { rows: result.rows, rowCount: result.rows.length, command: '', oid: 0, fields: [] } as never;
      },
    };
  }
  return executor as Queryable;
}
