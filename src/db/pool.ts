/**
 * pg.Pool with an end that waits for its connections to close.
 *
 * pg-pool's own end() resolves once it has asked its idle connections to close, not once they have. A server
 * stopped just after (the embedded one, when `start` ends) then terminates those sessions itself, and the pool
 * reported that as an idle connection's error: a warning on a clean stop, about one stop in seven.
 */
import pg from 'pg';

const openClients = new WeakMap<pg.Pool, Set<pg.PoolClient>>();

/** A pool whose connection errors go to onError, except those of connections it is closing. */
export function createPool(config: pg.PoolConfig, onError: (error: Error) => void = () => {}): pg.Pool {
  const pool = new pg.Pool(config);
  const clients = new Set<pg.PoolClient>();
  openClients.set(pool, clients);
  pool.on('connect', (client) => {
    clients.add(client);
    client.once('end', () => clients.delete(client));
  });
  pool.on('error', (error) => {
    if (!pool.ending) onError(error);
  });
  return pool;
}

/** Ends a pool made by createPool and waits (up to timeoutMs) until each of its connections has closed. */
export async function endPool(pool: pg.Pool, timeoutMs = 5_000): Promise<void> {
  await pool.end().catch(() => {});
  const closing = [...(openClients.get(pool) ?? [])];
  if (closing.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(closing.map((client) => new Promise((closed) => client.once('end', closed)))),
    new Promise((gaveUp) => (timer = setTimeout(gaveUp, timeoutMs))),
  ]);
  clearTimeout(timer);
}
