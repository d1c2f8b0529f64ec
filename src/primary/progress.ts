/**
 * The progress tasks report (`ctx.progress`), written to the database a few times a second: the latest value per
 * task wins, and all that waits goes in one statement. Best effort: a write that fails is tried again with the
 * next, and a value superseded meanwhile is never written.
 */
import type { Logger } from 'pino';
import type { Queryable } from '../db/queryable.js';
import { recordProgress, type ProgressReport } from '../queue/record-progress.js';

/** How long a report waits for others to share its statement. */
const flushDelayMs = 100;

export class ProgressWriter {
  readonly #waiting = new Map<string, ProgressReport>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #warned = false;

  constructor(
    private readonly db: Queryable,
    private readonly schema: string,
    private readonly supervisorId: string,
    private readonly log: Logger,
  ) {}

  report(report: ProgressReport): void {
    this.#waiting.set(report.id, report);
    this.#timer ??= setTimeout(() => void this.flush(), flushDelayMs);
  }

  /** Writes what waits (after the write under way, if any); never throws. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // One write at a time: two on different connections could commit the older value last.
    while (this.#writing) await this.#writing;
    if (this.#waiting.size === 0) return;
    const reports = [...this.#waiting.values()];
    this.#waiting.clear();
    this.#writing = recordProgress(this.db, this.schema, this.supervisorId, reports)
      .then(() => {
        this.#warned = false;
      })
      .catch((error: unknown) => {
        for (const r of reports) if (!this.#waiting.has(r.id)) this.#waiting.set(r.id, r);
        if (!this.#warned) this.log.warn({ event: 'progress_write_failed', err: error }, 'could not record task progress; trying again');
        this.#warned = true;
        this.#timer ??= setTimeout(() => void this.flush(), 1_000);
      })
      .finally(() => {
        this.#writing = undefined;
      });
    await this.#writing;
  }

  /** No more timers (the supervisor stops; its final flush was awaited). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
