/**
 * Records task outcomes in batches: while a batch is being written, the next accumulates, so the number of
 * round trips falls as the load rises (group commit). Two batches may be in flight at once, on two
 * connections, so that the database works on one while the other travels. An outcome stays in memory until
 * the database accepted it; on a database error the batch is retried.
 *
 * With nothing being written, a task's success that arrives while other tasks are still out on the workers
 * may wait a little for their outcomes (as PostgreSQL's commit_delay does, with commit_siblings): half as long as
 * the task ran, at most `maxLingerMs`. The write goes as soon as every task out has reported, or the time is up.
 * A lone task's outcome, and any outcome that is not a success, is written at once. At a few hundred tasks a
 * second of ten milliseconds each, this halves the statements (measured: 1,680 → 730 per 2,000 tasks).
 *
 * A statement carries up to 1,000 outcomes and, as far as the workers measured their results, 16 MB of result
 * text (`maxBatchChars`). A batch the database refuses for a value in it (a data error: a result it cannot
 * store) is written again one outcome per statement, so that one bad outcome holds back no other; an outcome
 * refused on its own is recorded as a failure, `OUTCOME_NOT_STORABLE`, with the database's reason. Any other
 * error retries the batch.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isDataError } from '../db/error-classification.js';
import type { PreparingQueryable } from '../db/queryable.js';
import { storableText } from '../errors.js';
import { maxSettleBatch, settleTasks, type Settlement } from '../queue/settle-tasks.js';

/** Batches in flight at once. */
const maxWriters = 2;
/** Outcomes waiting before a second batch starts beside the one in flight. */
const secondWriterBacklog = 100;
/**
 * Result text per statement, as far as the workers measured it: a batch stops growing past it (one larger result
 * goes alone). Without it, large results piling up behind a slow write made the next statement larger and slower
 * still, until its text passed what a JavaScript string or a PostgreSQL parameter holds and it failed on every try.
 */
export const defaultMaxBatchChars = 16 * 1_048_576;
/** The code of the failure recorded in place of an outcome the database refused. */
const notStorable = 'OUTCOME_NOT_STORABLE';

export interface SettlerOptions {
  /** The longest a success waits for the outcomes of the other tasks out on the workers; 0: never waits. */
  maxLingerMs: number;
  /** Tasks handed to workers whose outcome has not arrived yet. */
  outstanding: () => number;
  /** Result text per statement (default defaultMaxBatchChars). */
  maxBatchChars?: number;
}

export class Settler {
  #pending: Settlement[] = [];
  /** Outcomes of a batch the database refused for a value in it: written one per statement, before the rest. */
  #alone: Settlement[] = [];
  #flushing = new Set<Promise<void>>();
  /** The batches of the statements being written. */
  readonly #writing = new Set<Settlement[]>();
  #linger: NodeJS.Timeout | undefined;
  #lingerUntil = Infinity;

  constructor(
    private readonly db: PreparingQueryable,
    private readonly schema: string,
    private readonly supervisorId: string,
    private readonly log: Logger,
    /**
     * The outcomes the database accepted, the `finished_at` it recorded for them, and the ids it fenced out
     * (no longer held by this supervisor).
     */
    private readonly onSettled: (settled: Settlement[], finishedAt: Date, fenced: string[]) => void = () => {},
    private readonly options: SettlerOptions = { maxLingerMs: 0, outstanding: () => 0 },
  ) {}

  get pending(): number {
    return this.#pending.length + this.#alone.length;
  }

  /** The tasks whose outcome is waiting to be written or being written: still `running` in the database. */
  heldIds(): string[] {
    return [...this.#pending, ...this.#alone, ...[...this.#writing].flat()].map((s) => s.id);
  }

  /** `ranMs`: how long the task ran, for a success (which may wait for others); otherwise written at once. */
  add(settlement: Settlement, ranMs = 0): void {
    this.#pending.push(settlement);
    if (this.#flushing.size === 0) {
      const wait = Math.min(this.options.maxLingerMs, ranMs / 2);
      if (wait >= 1 && this.options.outstanding() > 0 && this.#pending.length < secondWriterBacklog) {
        const until = performance.now() + wait;
        if (until < this.#lingerUntil) {
          clearTimeout(this.#linger);
          this.#lingerUntil = until;
          this.#linger = setTimeout(() => this.#write(), wait);
        }
      } else {
        this.#write();
      }
    } else if (this.#flushing.size < maxWriters && this.#pending.length >= secondWriterBacklog) {
      // A second writer starts only for a backlog worth a statement of its own.
      this.#write();
    }
  }

  #write(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#lingerUntil = Infinity;
    const flushing: Promise<void> = this.#flush().finally(() => this.#flushing.delete(flushing));
    this.#flushing.add(flushing);
  }

  /** Resolves when everything added so far is in the database, or false when `timeoutMs` passed first. */
  async drain(timeoutMs = Infinity): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    if (this.#linger) this.#write();
    while (this.#flushing.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const all = Promise.all(this.#flushing);
      if (left === Infinity) await all;
      else await Promise.race([all, delay(left)]);
    }
    return true;
  }

  async #flush(): Promise<void> {
    let failures = 0;
    while (this.#pending.length > 0 || this.#alone.length > 0) {
      const alone = this.#alone.length > 0;
      const batch = alone ? this.#alone.splice(0, 1) : this.#pending.splice(0, this.#batchLength());
      this.#writing.add(batch);
      try {
        const { settled, finishedAt } = await settleTasks(this.db, this.schema, this.supervisorId, batch);
        failures = 0;
        const ids = settled.length === batch.length ? null : new Set(settled);
        const accepted = ids ? batch.filter((s) => ids.has(s.id)) : batch;
        const fenced = ids ? batch.filter((s) => !ids.has(s.id)).map((s) => s.id) : [];
        if (fenced.length > 0) {
          this.log.warn({ event: 'settle_fenced', taskIds: fenced }, 'outcomes not recorded: the tasks are no longer held by this supervisor');
        }
        this.onSettled(accepted, finishedAt, fenced);
      } catch (error) {
        if (isDataError(error) && this.#setApart(batch, error)) continue;
        failures += 1;
        (alone ? this.#alone : this.#pending).unshift(...batch);
        const wait = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
        this.log.warn({ event: 'settle_failed', err: error, retryInMs: wait, pending: this.pending }, 'could not record task outcomes; retrying');
        await delay(wait);
      } finally {
        this.#writing.delete(batch);
      }
    }
  }

  /** How many pending outcomes the next statement takes: up to maxSettleBatch, and their results up to the size cap. */
  #batchLength(): number {
    const cap = this.options.maxBatchChars ?? defaultMaxBatchChars;
    const n = Math.min(this.#pending.length, maxSettleBatch);
    let chars = 0;
    for (let i = 0; i < n; i++) {
      chars += this.#pending[i]!.resultSize ?? 0;
      if (chars > cap) return Math.max(1, i);
    }
    return n;
  }

  /**
   * After a data error: a batch of several goes back to be written one by one; a single outcome is replaced by
   * its failure. False for such a failure refused in turn (then it is retried like any failed write).
   */
  #setApart(batch: Settlement[], error: unknown): boolean {
    if (batch.length > 1) {
      this.#alone.unshift(...batch);
      return true;
    }
    const refused = batch[0]!;
    if (refused.error?.code === notStorable) return false;
    const message = storableText((error as Error).message ?? String(error));
    const failure: Settlement = {
      id: refused.id,
      state: 'failed',
      workerPid: refused.workerPid,
      error: { name: 'PreforkError', code: notStorable, message: `the task's outcome could not be recorded: ${message}`, retryable: false },
    };
    this.#alone.unshift(failure);
    this.log.error(
      { event: 'outcome_not_storable', taskId: refused.id, state: refused.state, err: error },
      "the database refused a task's outcome; recording the task as failed",
    );
    return true;
  }
}
