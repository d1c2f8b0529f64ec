/**
 * Before a worker reports ready, the database must answer: connect, ask its version, close, within a timeout.
 * While it does not, the worker tells the primary (once per outage) and tries again with capped backoff,
 * instead of crashing and being respawned in a loop.
 */
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { redactSecrets } from '../db/connection-string.js';
import { serializeError, type SerializedError } from '../errors.js';
import type { ConnectionSlots } from './connection-slots.js';

export interface DatabaseCheckOptions {
  databaseUrl: string;
  applicationName: string;
  timeoutMs: number;
  /** null: the budget is not enforced. */
  slots: ConnectionSlots | null;
  log: Logger;
  onWaiting: (error: SerializedError) => void;
}

/** Resolves with the server's version number (`server_version_num`, e.g. 150004) once the database answers. */
export async function waitForDatabase(o: DatabaseCheckOptions): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const version = await checkOnce(o);
      if (attempt > 1) o.log.info({ event: 'database_reachable', attempts: attempt }, 'the database answers again');
      return version;
    } catch (error) {
      const serialized = serializeError(error);
      serialized.message = redactSecrets(serialized.message, o.databaseUrl);
      serialized.stack = undefined;
      if (attempt === 1) o.onWaiting(serialized);
      const wait = Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
      o.log.warn({ event: 'database_check_failed', attempt, retryInMs: Math.round(wait), error: serialized.message }, 'the database does not answer; waiting');
      await delay(wait);
    }
  }
}

async function checkOnce(o: DatabaseCheckOptions): Promise<number> {
  const slot = o.slots?.slot();
  await slot?.acquire();
  const client = new pg.Client({
    connectionString: o.databaseUrl,
    application_name: o.applicationName,
    connectionTimeoutMillis: o.timeoutMs,
    query_timeout: o.timeoutMs,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ v: number }>("select current_setting('server_version_num')::int as v");
    return rows[0]?.v ?? 0;
  } finally {
    await client.end().catch(() => {});
    slot?.release();
  }
}
