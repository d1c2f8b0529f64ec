/**
 * The primary's LISTEN connection. On a lost connection it reconnects with backoff, listens again, and
 * reports `reconnected` so the supervisor can claim whatever was notified during the gap.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { quoteIdent } from '../db/identifiers.js';

export interface ListenerEvents {
  notification: [channel: string, payload: string];
  reconnected: [];
}

export class Listener extends EventEmitter<ListenerEvents> {
  #client: pg.Client | null = null;
  #closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly channels: readonly string[],
    private readonly log: Logger,
    private readonly applicationName = 'prefork listener',
  ) {
    super();
  }

  async start(): Promise<void> {
    this.#client = await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: this.applicationName });
    client.on('notification', (n) => this.emit('notification', n.channel, n.payload ?? ''));
    client.on('error', (error) => {
      this.log.warn({ event: 'listener_error', err: error }, 'listen connection failed');
    });
    client.on('end', () => {
      if (this.#client === client && !this.#closed) {
        this.#client = null;
        void this.#reconnect();
      }
    });
    await client.connect();
    // Every LISTEN in one simple-protocol round trip.
    if (this.channels.length > 0) await client.query(this.channels.map((channel) => `listen ${quoteIdent(channel)}`).join('; '));
    return client;
  }

  async #reconnect(): Promise<void> {
    this.log.warn({ event: 'listener_lost' }, 'listen connection lost; reconnecting');
    for (let attempt = 1; !this.#closed; attempt++) {
      await delay(Math.min(5_000, 100 * 2 ** Math.min(attempt, 6)));
      if (this.#closed) return;
      try {
        const client = await this.#connect();
        if (this.#closed) {
          await client.end().catch(() => {});
          return;
        }
        this.#client = client;
        this.log.info({ event: 'listener_reconnected', attempt }, 'listen connection re-established');
        this.emit('reconnected');
        return;
      } catch (error) {
        this.log.debug({ event: 'listener_reconnect_failed', attempt, err: error }, 'reconnect failed');
      }
    }
  }
}
