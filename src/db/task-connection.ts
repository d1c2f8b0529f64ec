/**
 * One unpooled PostgreSQL connection for one task attempt: opened on the first query, closed when the task
 * settles. `db` is a Kysely instance whose "pool" is this single connection; a mutex serialises concurrent
 * queries, and a transaction holds the connection until it ends.
 */
import pg from 'pg';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import { PreforkError } from '../errors.js';

export interface SessionSettings {
  /** Milliseconds; 0 disables. */
  statementTimeoutMs?: number | undefined;
  lockTimeoutMs?: number | undefined;
  idleInTransactionTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  /**
   * PostgreSQL 14+: how often a running query checks that its client is still there, so the query of a
   * killed worker stops instead of running on. Leave undefined on older servers.
   */
  clientConnectionCheckIntervalMs?: number | undefined;
}

export interface TaskConnectionOptions extends SessionSettings {
  connectionString: string;
  /** Shown in pg_stat_activity, e.g. `prefork:prefork w3 t1042`. At most 63 bytes are kept by the server. */
  applicationName: string;
  /** Called once the connection is open, with the server's backend pid. */
  onConnect?: ((backendPid: number) => void) | undefined;
}

export class TaskConnection implements AsyncDisposable {
  readonly db: Kysely<any>;
  readonly #options: TaskConnectionOptions;
  #client: pg.Client | undefined;
  #opening: Promise<pg.Client> | undefined;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #opened = 0;

  constructor(options: TaskConnectionOptions) {
    this.#options = options;
    const pool: PostgresPool = {
      connect: () => this.#lease(),
      end: () => this.close(),
    };
    this.db = new Kysely({ dialect: new PostgresDialect({ pool }) });
  }

  /** Whether a connection was ever opened for this task. */
  get used(): boolean {
    return this.#opened > 0;
  }

  get backendPid(): number | null {
    return (this.#client as { processID?: number } | undefined)?.processID ?? null;
  }

  /** The raw `pg` client, opened on demand. Do not hold on to it after the task settles. */
  async client(): Promise<pg.Client> {
    if (this.#closed) throw new PreforkError('CONNECTION_CLOSED', 'the task connection is closed: the task already settled');
    if (this.#client) return this.#client;
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#client ?? (await this.#opening?.catch(() => undefined));
    this.#client = undefined;
    if (client) await endQuietly(client);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #open(): Promise<pg.Client> {
    const o = this.#options;
    const client = new pg.Client({
      connectionString: o.connectionString,
      application_name: o.applicationName,
      statement_timeout: o.statementTimeoutMs || undefined,
      lock_timeout: o.lockTimeoutMs || undefined,
      idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs || undefined,
      connectionTimeoutMillis: o.connectTimeoutMs || undefined,
      options: o.clientConnectionCheckIntervalMs ? `-c client_connection_check_interval=${Math.floor(o.clientConnectionCheckIntervalMs)}` : undefined,
    });
    // An error on an idle connection (the server went away between queries) must not crash the worker;
    // the next query on this client fails and the task sees that error.
    client.on('error', () => {});
    this.#opened += 1;
    try {
      await client.connect();
    } catch (error) {
      await endQuietly(client);
      throw error;
    }
    if (this.#closed) {
      await endQuietly(client);
      throw new PreforkError('CONNECTION_CLOSED', 'the task connection is closed: the task already settled');
    }
    this.#client = client;
    const pid = this.backendPid;
    if (pid !== null) o.onConnect?.(pid);
    return client;
  }

  /** Kysely's pool.connect(): waits its turn, then hands out the single client. */
  async #lease(): Promise<PostgresPoolClient> {
    let release!: () => void;
    const turn = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.#queue;
    this.#queue = previous.then(() => turn);
    await previous;
    let client: pg.Client;
    try {
      client = await this.client();
    } catch (error) {
      release();
      throw error;
    }
    let released = false;
    return {
      query: ((sqlOrCursor: unknown, parameters?: ReadonlyArray<unknown>) =>
        client.query(sqlOrCursor as string, parameters as unknown[])) as unknown as PostgresPoolClient['query'],
      release: (destroy?: boolean) => {
        if (released) return;
        released = true;
        if (destroy && this.#client === client) {
          // Kysely discards a connection whose rollback failed: open a fresh one next time.
          this.#client = undefined;
          void endQuietly(client);
        }
        release();
      },
    };
  }
}

async function endQuietly(client: pg.Client): Promise<void> {
  try {
    await client.end();
  } catch {
    // already closed or broken: nothing left to release
  }
}
