/**
 * Queue depth for the metrics: counts of tasks by state, queried when Prometheus scrapes. The supervisor's
 * pool is its own; this is one more connection (at most), opened on the first scrape and closed on close().
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { redactSecrets } from '../db/connection-string.js';
import { createPool, endPool } from '../db/pool.js';
import { countTasksByState } from '../queue/read-tasks.js';
import type { TaskState } from '../queue/task-row.js';

export class QueueDepth {
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #log: Logger;
  readonly #url: string;
  #failing = false;

  constructor(options: { databaseUrl: string; schema: string; log: Logger }) {
    this.#url = options.databaseUrl;
    this.#schema = options.schema;
    this.#log = options.log;
    this.#pool = createPool({
      connectionString: options.databaseUrl,
      max: 1,
      application_name: 'prefork metrics',
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 60_000,
      statement_timeout: 5_000,
    });
  }

  /** Counts by state, or null when the database does not answer (the series are then left out). */
  async read(): Promise<Record<TaskState, number> | null> {
    try {
      const counts = await countTasksByState(this.#pool, this.#schema);
      if (this.#failing) this.#log.info({ event: 'metrics_queue_query_recovered' }, 'queue depth readable again');
      this.#failing = false;
      return counts;
    } catch (error) {
      if (!this.#failing) {
        const message = redactSecrets((error as Error)?.message ?? String(error), this.#url);
        this.#log.warn({ event: 'metrics_queue_query_failed', error: message }, 'could not count the queue for the metrics');
      }
      this.#failing = true;
      return null;
    }
  }

  async close(): Promise<void> {
    await endPool(this.#pool);
  }
}
