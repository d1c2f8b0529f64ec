/** TaskConnection: the budget slot contract, and a fresh connection after the old one died. */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { ConnectionSlot } from '../src/db/task-connection.js';
import { socketUrlFor } from '../src/db/local-socket.js';
import { databaseUrl, query } from './support/database.js';
import { useTaskConnections } from './support/task-connections.js';

const connections = useTaskConnections();

/** A fake budget of one: counts calls, tracks how many are held, and can hold back the grant. */
function fakeSlot(options: { hold?: boolean } = {}) {
  let grant: () => void = () => {};
  const granted = new Promise<void>((resolve) => (grant = resolve));
  if (!options.hold) grant();
  const slot = {
    acquired: 0,
    released: 0,
    held: 0,
    maxHeld: 0,
    grant,
    async acquire(signal?: AbortSignal) {
      slot.acquired += 1;
      await Promise.race([
        granted,
        new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
      ]);
      slot.held += 1;
      slot.maxHeld = Math.max(slot.maxHeld, slot.held);
    },
    release() {
      slot.released += 1;
      slot.held -= 1;
    },
  } satisfies ConnectionSlot & Record<string, unknown>;
  return slot;
}

const backendPid = async (db: ReturnType<typeof connections.open>['db']) =>
  (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid;

const sessions = () => query<{ pid: number }>(`select pid from pg_stat_activity where application_name = $1`, [connections.applicationName]);

describe('the connection budget slot', () => {
  it('is taken once before the first connect and given back once on close; the connection is real', async () => {
    const slot = fakeSlot({ hold: true });
    const connection = connections.open({ slot });
    const first = backendPid(connection.db);
    await expect.poll(() => slot.acquired).toBe(1);
    expect(await sessions()).toEqual([]); // no connect before the slot is granted
    slot.grant();
    const pid = await first;
    expect(await sessions()).toEqual([{ pid }]);
    expect(await backendPid(connection.db)).toBe(pid);
    expect(connection.backendPid).toBe(pid);
    await connection.close();
    await connection.close();
    expect(slot).toMatchObject({ acquired: 1, released: 1, held: 0, maxHeld: 1 });
  });

  it('is held across a reconnect, not taken twice', async () => {
    const slot = fakeSlot();
    const connected: number[] = [];
    const connection = connections.open({ slot, onConnect: (pid) => connected.push(pid) });
    const pid = await backendPid(connection.db);
    await query('select pg_terminate_backend($1)', [pid]);
    await expect.poll(() => connection.backendPid).toBeNull();
    const again = await backendPid(connection.db);
    expect(again).not.toBe(pid);
    expect(connected).toEqual([pid, again]);
    expect(connection.connects).toBe(2);
    await connection.close();
    expect(slot).toMatchObject({ acquired: 1, released: 1, maxHeld: 1 });
  });

  it('is given back when opening failed for good', async () => {
    const slot = fakeSlot();
    const url = new URL(databaseUrl());
    url.pathname = '/prefork_no_such_db';
    const connection = connections.open({ slot, connectionString: url.href });
    await expect(backendPid(connection.db)).rejects.toMatchObject({ code: 'DB_CONNECT_FAILED' });
    expect(slot).toMatchObject({ acquired: 1, released: 1, held: 0 });
    await connection.close();
    expect(slot.released).toBe(1);
  });

  it('a wait for the slot ends with the task signal or close(), holding nothing', async () => {
    const controller = new AbortController();
    const slot = fakeSlot({ hold: true });
    const aborted = connections.open({ slot, signal: controller.signal });
    const waiting = backendPid(aborted.db);
    await expect.poll(() => slot.acquired).toBe(1);
    controller.abort(new Error('task cancelled'));
    await expect(waiting).rejects.toThrow('task cancelled');

    const closed = connections.open({ slot });
    // Caught from the start: it fails while close() is still being awaited.
    const alsoWaiting = backendPid(closed.db).then(
      () => null,
      (error: unknown) => error,
    );
    await expect.poll(() => slot.acquired).toBe(2);
    await closed.close();
    expect(await alsoWaiting).toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(slot).toMatchObject({ released: 0, held: 0 });
    expect(await sessions()).toEqual([]);
  });
});

describe('a connection that died', () => {
  it('is replaced by a fresh one on the next query, with the same session settings', async () => {
    const connection = connections.open({ statementTimeoutMs: 1234 });
    const pid = await backendPid(connection.db);
    await query('select pg_terminate_backend($1)', [pid]);
    await expect.poll(() => connection.backendPid).toBeNull();
    const { rows } = await sql<{ pid: number; timeout: string }>`select pg_backend_pid() as pid, current_setting('statement_timeout') as timeout`.execute(connection.db);
    expect(rows[0]!.pid).not.toBe(pid);
    expect(rows[0]!.timeout).toBe('1234ms');
  });

  it('fails a query that was running on it, with a transient error', async () => {
    const connection = connections.open();
    const pid = await backendPid(connection.db);
    // Its failure is caught from the start: it can arrive before pg_terminate_backend's own reply does.
    const running = sql`select pg_sleep(30)`.execute(connection.db).then(
      () => null,
      (error: unknown) => error,
    );
    await expect.poll(async () => (await query(`select 1 from pg_stat_activity where pid = $1 and state = 'active'`, [pid])).length).toBe(1);
    await query('select pg_terminate_backend($1)', [pid]);
    expect(await running).toMatchObject({ code: '57P01' });
    expect(await backendPid(connection.db)).not.toBe(pid);
  });
});

describe('closing with a query still running', () => {
  // Over TCP as given, and over the server's Unix socket (what a worker uses for a local server) when it has one.
  const transports = [['TCP', databaseUrl()] as const, ...(socketUrlFor(databaseUrl()) ? [['its Unix socket', socketUrlFor(databaseUrl())!] as const] : [])];
  it.each(transports)('cancels the query the task did not await, so the server stops it at once (over %s)', async (_, connectionString) => {
    // No client_connection_check_interval here: without the cancel, the server would sleep the full 60 s.
    const connection = connections.open({ connectionString });
    const pid = await backendPid(connection.db);
    const forgotten = sql`select pg_sleep(60)`.execute(connection.db).catch((error: Error) => error);
    await expect.poll(async () => (await query(`select state from pg_stat_activity where pid = $1`, [pid]))[0]?.state).toBe('active');
    await connection.close();
    await expect.poll(() => query(`select pid from pg_stat_activity where pid = $1`, [pid]), { timeout: 5_000 }).toEqual([]);
    expect(await forgotten).toBeInstanceOf(Error);
  });
});
