/**
 * The primary's side of direct submission (src/direct/protocol.ts): its socket, the tasks handed over on it,
 * and the senders waiting on it for an outcome.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PreparingQueryable } from '../db/queryable.js';
import type { DirectReply, SubmitRequest } from '../direct/protocol.js';
import { publicError } from '../errors.js';
import { insertClaimed, type InsertedTask } from '../queue/add-claimed.js';
import { addSubmitted } from '../queue/add-submitted.js';
import { flushCommitted } from '../queue/supervisors.js';
import type { ClaimedTask } from '../queue/claim-tasks.js';
import type { Settlement } from '../queue/settle-tasks.js';
import { removeStaleSockets, socketDirectory, SubmitServer, type DirectConnection } from './submit-server.js';

export interface DirectSubmissionDeps {
  db: PreparingQueryable;
  schema: string;
  supervisorId: string;
  log: Logger;
  /** Whether the supervisor takes tasks (false once it is stopping). */
  accepting: () => boolean;
  /** Whether a task of this name and queue can start here at once: a worker runs it, a slot is free, nothing is buffered. */
  runsHere: (name: string, queue: string) => boolean;
  /** No task this supervisor could claim is known to be due (see insertClaimed's `nothingDue`). */
  nothingDue: () => boolean;
  /** The attempts a task of this name gets when the send set none. */
  maxAttempts: (name: string) => number;
  /** Hands a claimed task to a free slot now; false when the supervisor began to stop. */
  runNow: (task: ClaimedTask) => boolean;
  /** Gives tasks back to the queue, uncounted. */
  release: (ids: string[], reason: string) => Promise<void>;
  /** Keeps a background promise for the stop to wait on. */
  track: (promise: Promise<unknown>) => void;
}

interface Waiter {
  connection: DirectConnection;
  ref: number;
  name: string;
  queue: string;
  maxAttempts: number | null;
  createdAt: string;
  /** Sent with a key: another send of that key may be waiting for this task through the database. */
  keyed: boolean;
  /** Sends the held-back `accepted` (see `deferAcceptMs`) should the outcome not come first. */
  acceptTimer?: NodeJS.Timeout | undefined;
}

export class DirectSubmissions {
  #server: SubmitServer | null = null;
  /** Tasks taken over the socket whose sender waits there for the outcome. */
  readonly #waiters = new Map<string, Waiter>();

  /** Inserts sent and not yet answered (their task may be running under this supervisor already). */
  #inserting = 0;

  /** The durable commit in flight (`flushCommitted`), and when it was sent: it covers what committed before. */
  #flush: { sentAt: number; done: Promise<void> } | undefined;

  constructor(private readonly deps: DirectSubmissionDeps) {}

  get inserting(): boolean {
    return this.#inserting > 0;
  }

  /** The socket's path once it listens, for the supervisors table. */
  get socketPath(): string | null {
    return this.#server?.path ?? null;
  }

  /** Opens the socket; without one (no private directory, say) senders go through the database. */
  async open(): Promise<void> {
    const { log } = this.deps;
    const dir = socketDirectory();
    if (!dir) {
      log.warn({ event: 'submit_socket_unavailable' }, 'no private directory for the direct-submission socket; senders go through the database');
      return;
    }
    const server = new SubmitServer(join(dir, `${this.deps.supervisorId}.sock`), (request, connection) => this.#onSubmit(request, connection), log);
    try {
      await server.listen();
      this.#server = server;
      log.debug({ event: 'submit_socket_listening', path: server.path }, 'direct submission socket open');
      this.deps.track(removeStaleSockets(dir, server.path).catch(() => 0));
    } catch (error) {
      log.warn({ event: 'submit_socket_unavailable', err: error }, 'could not open the direct-submission socket; senders go through the database');
    }
  }

  /** No new connections (a stop began); those open are answered `NOT_ACCEPTING` from now on. */
  stopAccepting(): void {
    this.#server?.stopAccepting();
  }

  /** Senders still waiting (their task went back to the queue) wait through the database; the socket closes. */
  close(): void {
    for (const [id, w] of this.#waiters) {
      clearTimeout(w.acceptTimer);
      w.connection.send({ op: 'requeued', ref: w.ref, id });
    }
    this.#waiters.clear();
    this.#server?.close();
  }

  /**
   * Whether task `id`'s sender, and only it, waits for its outcome, on a connection still open: it hears of the
   * outcome there, which then needs no `done` NOTIFY (`Settlement.quiet`). Not a task sent with a key: a send of
   * the same key gets this task, and waits for it through the database. A sender that loses the connection
   * reads the task once it waits through the database, and again every second.
   */
  waitsOnSocket(id: string): boolean {
    const w = this.#waiters.get(id);
    return w !== undefined && !w.keyed && w.connection.open;
  }

  /** Outcomes in the database: a sender waiting for one gets it, or is told to wait through the database. */
  onSettled(settled: readonly Settlement[], finishedAt: Date, fenced: readonly string[]): void {
    if (this.#waiters.size === 0) return;
    for (const s of settled) {
      const w = this.#take(s.id);
      if (!w) continue;
      if (s.state === 'queued') {
        w.connection.send({ op: 'requeued', ref: w.ref, id: s.id });
        continue;
      }
      w.connection.send({
        op: 'result',
        ref: w.ref,
        task: {
          id: s.id,
          task: w.name,
          queue: w.queue,
          status: s.state,
          result: s.state === 'succeeded' ? (s.result ?? null) : null,
          error: publicError(s.error ?? null),
          attempts: 1,
          maxAttempts: w.maxAttempts,
          workerPid: s.workerPid ?? null,
          createdAt: w.createdAt,
          // Inserted and claimed in one statement: the same transaction time.
          startedAt: w.createdAt,
          finishedAt: finishedAt.toISOString(),
          progress: s.progress ?? null,
        },
      });
    }
    for (const id of fenced) {
      const w = this.#take(id);
      if (!w) continue;
      w.connection.send({ op: 'requeued', ref: w.ref, id });
    }
  }

  /**
   * Sends a held-back `accepted` once a durable commit sent after the insert returned: then the insert is on disk.
   * Not sent if the sender stopped waiting meanwhile (the outcome came, and implies it), nor if that commit
   * failed: the sender then gives the submission up and resends it through the database, where its submission
   * id finds this task (see `addSubmitted`).
   */
  #acceptOnceFlushed(id: string, waiter: Waiter, insertedAt: number, accepted: DirectReply): void {
    let flush = this.#flush;
    // One in flight covers this insert only if it was sent after the insert committed.
    if (!flush || flush.sentAt <= insertedAt) {
      const sentAt = performance.now();
      const done = flushCommitted(this.deps.db, this.deps.schema, this.deps.supervisorId).finally(() => {
        if (this.#flush?.done === done) this.#flush = undefined;
      });
      flush = this.#flush = { sentAt, done };
    }
    this.deps.track(
      flush.done.then(
        () => {
          if (this.#waiters.get(id) === waiter) waiter.connection.send(accepted);
        },
        (error: unknown) => this.deps.log.warn({ event: 'direct_accept_unconfirmed', taskId: id, err: error }, 'could not confirm a directly submitted task on disk; its sender will resend it through the database'),
      ),
    );
  }

  /** The waiter for task `id`, no longer waiting; its held-back `accepted` is now implied by what it is sent. */
  #take(id: string): Waiter | undefined {
    const w = this.#waiters.get(id);
    if (!w) return undefined;
    this.#waiters.delete(id);
    clearTimeout(w.acceptTimer);
    return w;
  }

  #onSubmit(request: SubmitRequest, connection: DirectConnection): void {
    if (!this.deps.accepting()) {
      connection.send({ op: 'refused', ref: request.ref, error: { code: 'NOT_ACCEPTING', message: 'the supervisor is stopping' } });
      return;
    }
    this.deps.track(this.#submit(request, connection));
  }

  /**
   * A task handed over directly: inserted claimed by this supervisor and run at once when a worker has a free
   * slot, nothing is buffered and no due task of its priority waits; otherwise queued like any other.
   */
  async #submit(r: SubmitRequest, connection: DirectConnection): Promise<void> {
    const { db, schema } = this.deps;
    const queue = r.queue ?? 'default';
    try {
      if (!this.deps.runsHere(r.name, queue)) {
        const added = await addSubmitted(db, schema, r.submission, r.name, r.payload, { queue, priority: r.priority, maxAttempts: r.maxAttempts, key: r.key });
        connection.send({ op: 'accepted', ref: r.ref, id: added.id, deduplicated: added.deduplicated, direct: false });
        return;
      }
      this.#inserting += 1;
      let row: InsertedTask;
      let insertedAt: number;
      try {
        row = await insertClaimed(db, schema, {
          name: r.name,
          payload: r.payload,
          queue,
          priority: r.priority ?? 0,
          maxAttempts: r.maxAttempts ?? null,
          key: r.key ?? null,
          supervisorId: this.deps.supervisorId,
          submission: r.submission,
          nothingDue: this.deps.nothingDue(),
          // A sender that waits and lets `accepted` be held back hears of the task first from its outcome, whose
          // commit is durable: the insert need not wait for its own flush (see `ClaimedInsert.flushWithOutcome`).
          flushWithOutcome: r.wait && Boolean(r.deferAcceptMs),
        });
        insertedAt = performance.now();
      } finally {
        this.#inserting -= 1;
      }
      if (row.state !== 'running' || row.deduplicated) {
        connection.send({ op: 'accepted', ref: r.ref, id: row.id, deduplicated: row.deduplicated, direct: false });
        return;
      }
      const task: ClaimedTask = { id: row.id, name: r.name, payload: r.payload, attempt: 1, maxAttempts: row.maxAttempts ?? this.deps.maxAttempts(r.name), claimedAt: Date.now() };
      const accepted = { op: 'accepted', ref: r.ref, id: row.id, deduplicated: false, direct: r.wait } as const;
      let waiter: Waiter | undefined;
      if (r.wait) {
        waiter = { connection, ref: r.ref, name: r.name, queue, maxAttempts: task.maxAttempts, createdAt: row.createdAt.toISOString(), keyed: r.key !== undefined && r.key !== null };
        this.#waiters.set(row.id, waiter);
      }
      // `accepted` tells the sender the task is in the database: after the insert's flush, when it did not wait for it.
      const accept = row.flushDeferred && waiter ? () => this.#acceptOnceFlushed(row.id, waiter, insertedAt, accepted) : () => connection.send(accepted);
      // To the worker first, then the reply: the task starts while the sender reads it.
      const started = this.deps.runNow(task);
      if (waiter && r.deferAcceptMs && started) {
        // A short task's outcome says it all: `accepted` only goes out if the outcome has not come by then.
        waiter.acceptTimer = setTimeout(() => {
          waiter.acceptTimer = undefined;
          accept();
        }, r.deferAcceptMs).unref();
      } else {
        accept();
      }
      if (!started) {
        // Stopping since the insert: the task goes back to the queue; close() tells the sender.
        await this.deps.release([row.id], 'submitted while the supervisor began to stop');
      }
    } catch (error) {
      connection.send({ op: 'refused', ref: r.ref, error: { code: 'DATABASE_ERROR', message: (error as Error)?.message ?? String(error) } });
    }
  }
}
