import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';

/**
 * Deletes tasks that finished more than `olderThanMs` ago, in small batches so no lock is held for long.
 * Stops after `maxBatches`; the next sweep continues. Returns how many were deleted.
 */
export async function deleteFinished(db: Queryable, schema: string, olderThanMs: number, batchSize = 500, maxBatches = 20): Promise<number> {
  const q = quoteIdent(schema);
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const { rowCount } = await db.query(
      `delete from ${q}.tasks where id in (
         select id from ${q}.tasks
          where finished_at < now() - $1 * interval '1 millisecond' and state in ('succeeded', 'failed', 'timed_out', 'cancelled')
          order by finished_at
          limit $2
          for update skip locked
       )`,
      [olderThanMs, batchSize],
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) break;
  }
  return total;
}
