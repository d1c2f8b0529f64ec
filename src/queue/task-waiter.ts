/**
 * Waits for tasks to reach a final state: woken by the `done` notification, with a slow re-read as a
 * safety net for a notification missed while the connection was busy or gone.
 */
import type pg from 'pg';
import { channelsFor, quoteIdent } from '../db/identifiers.js';
import { getTaskSummary } from './read-tasks.js';
import { finalStates, type TaskSummaryRow } from './task-row.js';

export class TaskWaiter {
  readonly #wakers = new Map<string, Set<() => void>>();
  readonly #onNotification = (n: pg.Notification) => {
    if (n.channel !== this.channel || !n.payload) return;
    for (const id of n.payload.split(',')) for (const wake of this.#wakers.get(id) ?? []) wake();
  };
  readonly channel: string;
  /** One query at a time on the connection (pg queues them, but calling query() while one runs is deprecated). */
  #queries: Promise<unknown> = Promise.resolve();
  /** Set once the connection is gone: every wait, now and later, throws it. */
  #lost: Error | undefined;

  private constructor(
    private readonly client: pg.Client,
    private readonly schema: string,
  ) {
    this.channel = channelsFor(schema).done;
  }

  /** LISTEN first: call before adding the task, so its completion cannot slip by. */
  static async listen(client: pg.Client, schema: string): Promise<TaskWaiter> {
    const waiter = new TaskWaiter(client, schema);
    client.on('notification', waiter.#onNotification);
    await client.query(`listen ${quoteIdent(waiter.channel)}`);
    return waiter;
  }

  /**
   * The task's row once final, or the latest row seen when `timeoutMs` passes first. `added`: the task was
   * added after this waiter started listening, so its completion cannot have been announced yet and the first
   * read is skipped (the notification, or the slow re-read, tells when to read).
   */
  async wait(
    id: string,
    options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined; recheckMs?: number; added?: boolean } = {},
  ): Promise<{ row: TaskSummaryRow | null; final: boolean }> {
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const recheckMs = options.recheckMs ?? 1_000;
    let skipRead = options.added === true;
    for (;;) {
      if (this.#lost) throw this.#lost;
      let woken = false;
      let wake!: () => void;
      const wakeUp = new Promise<void>((resolve) => {
        wake = () => {
          woken = true;
          resolve();
        };
      });
      const wakers = this.#wakers.get(id) ?? new Set();
      wakers.add(wake);
      this.#wakers.set(id, wakers);
      try {
        if (skipRead) {
          skipRead = false;
          const left = deadline - Date.now();
          if (left > 0 && !options.signal?.aborted) await sleepUntil(wakeUp, Math.min(left, recheckMs), options.signal);
          continue;
        }
        const row = await this.#serial(() => getTaskSummary(this.client, this.schema, id)).catch((error: unknown) => {
          throw this.#lost ?? error;
        });
        if (!row || finalStates.has(row.state)) return { row, final: row !== null };
        const left = deadline - Date.now();
        if (left <= 0 || options.signal?.aborted) return { row, final: false };
        if (!woken) await sleepUntil(wakeUp, Math.min(left, recheckMs), options.signal);
      } finally {
        wakers.delete(wake);
        if (wakers.size === 0) this.#wakers.delete(id);
      }
    }
  }

  /** The connection is gone: the waits in progress wake and throw `error`, as later ones do. */
  lost(error: Error): void {
    this.#lost ??= error;
    for (const wakers of this.#wakers.values()) for (const wake of wakers) wake();
  }

  async close(): Promise<void> {
    this.client.off('notification', this.#onNotification);
    await this.#serial(() => this.client.query(`unlisten ${quoteIdent(this.channel)}`)).catch(() => {});
  }

  #serial<T>(query: () => Promise<T>): Promise<T> {
    const result = this.#queries.then(query);
    this.#queries = result.catch(() => undefined);
    return result;
  }
}

function sleepUntil(wake: Promise<void>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    void wake.then(done);
  });
}
