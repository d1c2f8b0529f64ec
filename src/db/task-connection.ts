/**
 * One unpooled PostgreSQL connection for one task attempt: opened on the first query, closed when the task
 * settles. `db` is a Kysely instance whose "pool" is this single connection (single-client-pool.ts).
 *
 * Opening retries transient failures (connect-with-retry.ts). A connection that dies (the server ended it,
 * the network dropped) is forgotten at once, so the next query opens a fresh one; a query already holding
 * the dead one, such as a transaction in progress, fails rather than moving silently to another session.
 */
import net from 'node:net';
import pg from 'pg';
import type { Kysely } from 'kysely';
import { kysely } from './kysely-module.js';
import { PreforkError } from '../errors.js';
import { connectWithRetry, type ConnectRetryEvent } from './connect-with-retry.js';
import type { SessionSettings } from './session-settings.js';
import { singleClientPool } from './single-client-pool.js';

export type { SessionSettings } from './session-settings.js';

/**
 * A share of a connection budget. A task connection takes it once before its first connect, holds it across
 * connect retries and reconnects, and gives it back exactly once: when it closes, or when opening failed for
 * good. (Should the task query again after such a failure, the slot is acquired again first: at most one is
 * held at any time, and acquire and release always pair up.)
 */
export interface ConnectionSlot {
  /** Resolves when the slot is granted; rejects (and grants nothing) when `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void>;
  release(): void;
}

export interface TaskConnectionOptions extends SessionSettings {
  connectionString: string;
  /** Shown in pg_stat_activity, e.g. `prefork:prefork w3 t1042`. At most 63 bytes are kept by the server. */
  applicationName: string;
  /** Called each time a connection opens (again after a reconnect), with the server's backend pid. */
  onConnect?: ((backendPid: number) => void) | undefined;
  /** The task's signal: ends a wait for a slot and connect retries. */
  signal?: AbortSignal | undefined;
  slot?: ConnectionSlot | undefined;
  /** Told of each failed connect attempt that will be retried. */
  onConnectRetry?: ((event: ConnectRetryEvent) => void) | undefined;
}

export class TaskConnection implements AsyncDisposable {
  readonly db: Kysely<any>;
  readonly #options: TaskConnectionOptions;
  /**
   * Aborted by close() or the task's signal: ends a pending slot wait or connect retry at once. Made by the
   * first open, so a task that never queries, and a close with nothing opening, cost no controller, no
   * listener on the task's signal and no error (an error captures a stack).
   */
  #lifetime: AbortController | undefined;
  #unlink: (() => void) | undefined;
  #client: pg.Client | undefined;
  #opening: Promise<pg.Client> | undefined;
  #closed = false;
  #connects = 0;
  #slotHeld = false;

  constructor(options: TaskConnectionOptions) {
    this.#options = options;
    const pool = singleClientPool({ client: () => this.client(), discard: (client) => this.#discard(client), end: () => this.close() });
    // kysely is loaded before any task runs (a worker loads it before it reports ready).
    const { Kysely, PostgresDialect } = kysely();
    this.db = new Kysely({ dialect: new PostgresDialect({ pool }) });
  }

  /** Whether a connection was ever opened for this task. */
  get used(): boolean {
    return this.#connects > 0;
  }

  /** Connections opened so far: more than one after a reconnect. */
  get connects(): number {
    return this.#connects;
  }

  get backendPid(): number | null {
    return (this.#client as { processID?: number } | undefined)?.processID ?? null;
  }

  /** The raw `pg` client, opened on demand (again, if the last one died). Do not keep it after the task settles. */
  async client(): Promise<pg.Client> {
    if (this.#closed) throw closedError();
    if (this.#client) return this.#client;
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  /** Closed from the call on: a query or client() after it fails with CONNECTION_CLOSED, even before it resolves. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlink?.();
    // Only an open in progress listens; an idle connection has nothing to abort.
    if (this.#opening) this.#lifetime?.abort(closedError());
    const client = this.#client ?? (await this.#opening?.catch(() => undefined));
    this.#client = undefined;
    if (client) {
      // A query the task did not await is still running: pg would only drop the socket, and the server would
      // go on until it next checks its client (client_connection_check_interval, 1 s; never before PG 14).
      if (queryInFlight(client)) await cancelQuery(client);
      await endQuietly(client);
    }
    this.#releaseSlot();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #open(): Promise<pg.Client> {
    const o = this.#options;
    const lifetime = this.#lifetimeSignal();
    let client: pg.Client;
    try {
      if (o.slot && !this.#slotHeld) {
        await o.slot.acquire(lifetime);
        this.#slotHeld = true;
      }
      if (this.#closed) throw closedError();
      client = await connectWithRetry((timeoutMs) => this.#newClient(timeoutMs), {
        connectionString: o.connectionString,
        connectTimeoutMs: o.connectTimeoutMs,
        retries: o.connectRetries,
        maxElapsedMs: o.connectRetryMaxMs,
        baseDelayMs: o.connectRetryBaseDelayMs,
        maxDelayMs: o.connectRetryMaxDelayMs,
        signal: lifetime,
        onRetry: o.onConnectRetry,
      });
    } catch (error) {
      // Opening failed for good: the slot goes back now, and is taken again if the task tries once more.
      this.#releaseSlot();
      throw this.#closed ? closedError(error) : error;
    }
    if (this.#closed) {
      await endQuietly(client);
      throw closedError();
    }
    this.#watch(client);
    this.#client = client;
    this.#connects += 1;
    const pid = this.backendPid;
    if (pid !== null) o.onConnect?.(pid);
    return client;
  }

  #lifetimeSignal(): AbortSignal {
    if (!this.#lifetime) {
      this.#lifetime = new AbortController();
      this.#unlink = linkSignal(this.#options.signal, this.#lifetime);
    }
    return this.#lifetime.signal;
  }

  #newClient(connectTimeoutMs: number | undefined): pg.Client {
    const o = this.#options;
    return new pg.Client({
      connectionString: o.connectionString,
      application_name: o.applicationName,
      statement_timeout: o.statementTimeoutMs || undefined,
      lock_timeout: o.lockTimeoutMs || undefined,
      idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs || undefined,
      connectionTimeoutMillis: connectTimeoutMs,
      options: o.clientConnectionCheckIntervalMs ? `-c client_connection_check_interval=${Math.floor(o.clientConnectionCheckIntervalMs)}` : undefined,
    });
  }

  /**
   * A dead client is forgotten as soon as pg notices, so the next query opens a fresh connection. An error on
   * an idle connection must not crash the worker either: the next query on that client fails and says why.
   */
  #watch(client: pg.Client): void {
    client.on('error', () => this.#discard(client));
    client.on('end', () => this.#discard(client));
  }

  /** Drops `client` if it is the current one, and ends it. */
  #discard(client: pg.Client): void {
    if (this.#client === client) this.#client = undefined;
    void endQuietly(client);
  }

  #releaseSlot(): void {
    if (!this.#slotHeld) return;
    this.#slotHeld = false;
    this.#options.slot?.release();
  }
}

/** Aborts `controller` with `signal` (AbortSignal.any needs Node 20.3); returns what removes the link. */
function linkSignal(signal: AbortSignal | undefined, controller: AbortController): () => void {
  if (!signal) return () => {};
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

function closedError(cause?: unknown): PreforkError {
  return new PreforkError('CONNECTION_CLOSED', 'the task connection is closed: the task already settled', cause === undefined ? {} : { cause });
}

/** Whether pg has a query of this client's on the wire (pg's own check; false should pg ever drop it). */
function queryInFlight(client: pg.Client): boolean {
  const internal = client as unknown as { _getActiveQuery?: () => unknown };
  return typeof internal._getActiveQuery === 'function' && Boolean(internal._getActiveQuery());
}

/**
 * Asks the server to cancel the client's running query: the protocol's CancelRequest, on a connection of its
 * own to the same server (no login; the server answers by closing it). Waits at most a second; errors are
 * ignored (the session ends with its socket anyway).
 */
async function cancelQuery(client: pg.Client): Promise<void> {
  const { host, port, processID, secretKey } = client as unknown as { host: string; port: number; processID?: number; secretKey?: number };
  if (processID === undefined || secretKey === undefined) return;
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  await new Promise<void>((done) => {
    const socket = host.startsWith('/') ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host);
    const timer = setTimeout(() => socket.destroy(), 1_000);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
    socket.end(packet);
  });
}

async function endQuietly(client: pg.Client): Promise<void> {
  try {
    await client.end();
  } catch {
    // already closed or broken: nothing left to release
  }
}
