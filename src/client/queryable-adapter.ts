import type { CompiledQuery } from 'kysely';
import type { Queryable } from '../db/queryable.js';

/** Something that can run SQL: a pg Client/PoolClient/Pool, or a Kysely instance or transaction. */
export type Executor = Queryable | { executeQuery: (query: CompiledQuery) => Promise<{ rows: unknown[] }> };

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
