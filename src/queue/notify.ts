/** The NOTIFYs supervisors listen for: the writing side of the `wake` and `control` channels. */
import type { Queryable } from '../db/queryable.js';
import { channelsFor } from '../db/identifiers.js';
import type { ControlCommand } from '../primary/control.js';

/** Wakes the dispatcher of every supervisor on the schema: something may be claimable now. */
export async function notifyWake(db: Queryable, schema: string): Promise<void> {
  await db.query('select pg_notify($1, $2)', [channelsFor(schema).wake, '']);
}

/** Sends a command to one supervisor (its id) or to all (`*`); parseControl (primary/control.ts) reads it. */
export async function notifyControl(db: Queryable, schema: string, command: ControlCommand, target = '*'): Promise<void> {
  await db.query('select pg_notify($1, $2)', [channelsFor(schema).control, JSON.stringify({ ...command, target })]);
}
