/**
 * Kysely's "pool" over one connection at a time (kysely's sqlite driver shows the mutex): each connect()
 * waits its turn, then gets whatever client the owner has now, so a transaction holds the connection until it
 * ends and concurrent queries queue behind it.
 */
import type pg from 'pg';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import { classifyDatabaseError } from './error-classification.js';

export interface SingleClientSource {
  /** The current client, opened (or reopened) on demand. */
  client(): Promise<pg.Client>;
  /** Stop handing out `client`: it died, or Kysely gave up on it. */
  discard(client: pg.Client): void;
  end(): Promise<void>;
}

export function singleClientPool(source: SingleClientSource): PostgresPool {
  let queue: Promise<void> = Promise.resolve();

  async function connect(): Promise<PostgresPoolClient> {
    let release!: () => void;
    const turn = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = queue;
    queue = previous.then(() => turn);
    await previous;
    let client: pg.Client;
    try {
      client = await source.client();
    } catch (error) {
      release();
      throw error;
    }
    let released = false;
    return {
      query: ((sqlOrCursor: unknown, parameters?: ReadonlyArray<unknown>) => {
        const result = client.query(sqlOrCursor as string, parameters as unknown[]) as unknown;
        if (!(result instanceof Promise)) return result; // a cursor
        // A FATAL error (57P01, say) arrives before the socket closes: drop the client now, or the next
        // query would still be handed the dying one.
        return result.catch((error: unknown) => {
          if (classifyDatabaseError(error).category === 'connection') source.discard(client);
          throw error;
        });
      }) as unknown as PostgresPoolClient['query'],
      release: (destroy?: boolean) => {
        if (released) return;
        released = true;
        // Kysely discards a connection whose rollback failed: open a fresh one next time.
        if (destroy) source.discard(client);
        release();
      },
    };
  }

  return { connect, end: () => source.end() };
}
