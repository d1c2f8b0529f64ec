import type { Queryable } from '../db/queryable.js';
import { channelsFor } from '../db/identifiers.js';

/** Wakes the dispatcher of every supervisor on the schema: something may be claimable now. */
export async function notifyWake(db: Queryable, schema: string): Promise<void> {
  await db.query('select pg_notify($1, $2)', [channelsFor(schema).wake, '']);
}
