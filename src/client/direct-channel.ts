/**
 * The sender's end of direct submission (src/direct/protocol.ts): a connection to the socket of a supervisor
 * on this host. Used by `Client.run()` and `prefork send --wait`; whatever it cannot settle (no supervisor
 * here, a stopping one, a task queued behind others or retried, a connection that went) the caller finishes
 * through the database.
 */
import type { Socket } from 'node:net';
import { hostname } from 'node:os';
import { raceAbort } from '../db/backoff.js';
import type { Queryable } from '../db/queryable.js';
import { connectSocket } from '../direct/connect-socket.js';
import { lineReader, type DirectReply, type SubmitRequest } from '../direct/protocol.js';
import { PreforkError } from '../errors.js';
import { localSockets } from '../queue/supervisors.js';
import { finalStates, type TaskSummaryRow } from '../queue/task-row.js';
import { toTaskView, type TaskView } from '../queue/task-view.js';

/**
 * Failures after which the sender sends the task through the database instead, with `addSubmitted()` and the same
 * submission id: that inserts it, or finds the task an unanswered attempt made (never a second one).
 */
const retryThroughDatabase: ReadonlySet<string> = new Set(['NOT_ACCEPTING', 'DIRECT_CLOSED', 'DATABASE_ERROR', 'SUBMIT_UNCONFIRMED']);

/** How long a submission waits for `accepted` (a one-statement insert, normally about a millisecond). */
export const defaultAcceptTimeoutMs = 2_000;

/**
 * How long the supervisor may hold back `accepted` when the outcome could follow at once (`deferAcceptMs`): a
 * task that is done by then is answered with one reply instead of two. Well within `defaultAcceptTimeoutMs`.
 */
const deferAcceptMs = 100;

/** While the outcome is awaited on the socket, the task is also read from the database this often. */
const recheckMs = 1_000;

export type DirectSubmit = Omit<SubmitRequest, 'op' | 'ref'>;

export interface DirectAccepted {
  id: string;
  deduplicated: boolean;
  /**
   * With `wait` and a task that runs on this supervisor: resolves with its final state, or null when the
   * outcome will not come this way (wait through the database instead).
   */
  outcome: Promise<TaskView | null> | null;
}

interface Pending {
  accepted: (reply: Extract<DirectReply, { op: 'accepted' }>) => void;
  refused: (error: PreforkError) => void;
  /** Set once accepted to run here: only the outcome is still to come. */
  outcome?: (task: TaskView | null) => void;
}

export class DirectChannel {
  #nextRef = 1;
  readonly #pending = new Map<number, Pending>();
  #open = true;

  private constructor(private readonly socket: Socket) {
    socket.on('data', lineReader((line) => this.#onLine(line), () => socket.destroy()));
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose());
  }

  /** Connects to a supervisor of `schema` on this host that runs `taskName` (if any does); null when none answers. */
  static async open(db: Queryable, schema: string, taskName: string): Promise<DirectChannel | null> {
    for (const path of await localSockets(db, schema, hostname(), taskName)) {
      const connected = await connectSocket(path);
      if ('socket' in connected) return new DirectChannel(connected.socket);
    }
    return null;
  }

  get open(): boolean {
    return this.#open;
  }

  /**
   * Hands a task over. Resolves once it is in the database. Rejects with the supervisor's refusal
   * (`NOT_ACCEPTING`, `BAD_REQUEST`, `DATABASE_ERROR`), with `DIRECT_CLOSED` when the channel was closed before
   * the request went out, or with `SUBMIT_UNCONFIRMED` when the connection went after the request was sent and
   * before the answer came (the task may or may not be in the database: see `retryThroughDatabase`).
   */
  submit(request: DirectSubmit, acceptTimeoutMs = defaultAcceptTimeoutMs): Promise<DirectAccepted> {
    if (!this.#open) return Promise.reject(new PreforkError('DIRECT_CLOSED', 'the direct-submission connection is closed'));
    const ref = this.#nextRef++;
    return new Promise<DirectAccepted>((resolve, reject) => {
      // A supervisor that does not answer (frozen, overloaded) is given up on: the caller resends the same
      // submission through the database, which makes the task at most once whoever gets there first.
      const unanswered = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new PreforkError('SUBMIT_UNCONFIRMED', `the supervisor did not confirm the task within ${acceptTimeoutMs} ms`));
      }, acceptTimeoutMs);
      const pending: Pending = {
        accepted: (reply) => {
          clearTimeout(unanswered);
          if (!reply.direct) {
            this.#pending.delete(ref);
            resolve({ id: reply.id, deduplicated: reply.deduplicated, outcome: null });
            return;
          }
          const outcome = new Promise<TaskView | null>((settle) => {
            pending.outcome = settle;
          });
          resolve({ id: reply.id, deduplicated: reply.deduplicated, outcome });
        },
        refused: (error) => {
          clearTimeout(unanswered);
          this.#pending.delete(ref);
          reject(error);
        },
      };
      this.#pending.set(ref, pending);
      this.socket.write(`${JSON.stringify({ op: 'submit', ref, ...request })}\n`);
    });
  }

  close(): void {
    this.#open = false;
    this.socket.end();
  }

  #onLine(line: string): void {
    let reply: DirectReply;
    try {
      reply = JSON.parse(line) as DirectReply;
    } catch {
      return;
    }
    const pending = this.#pending.get(reply.ref);
    if (!pending) return;
    switch (reply.op) {
      case 'accepted':
        pending.accepted(reply);
        break;
      case 'refused':
        pending.refused(new PreforkError(reply.error.code, `the supervisor refused the task: ${reply.error.message}`));
        break;
      case 'result':
      case 'requeued':
        // Sent with `deferAcceptMs`: the outcome came first and stands for the `accepted` left out.
        if (!pending.outcome) pending.accepted({ op: 'accepted', ref: reply.ref, id: reply.op === 'result' ? reply.task.id : reply.id, deduplicated: false, direct: true });
        this.#pending.delete(reply.ref);
        pending.outcome?.(reply.op === 'result' ? reply.task : null);
        break;
    }
  }

  #onClose(): void {
    this.#open = false;
    for (const pending of this.#pending.values()) {
      if (pending.outcome) pending.outcome(null);
      else {
        pending.refused(new PreforkError('SUBMIT_UNCONFIRMED', 'the supervisor went away before confirming the task: it may or may not have been queued'));
      }
    }
    this.#pending.clear();
  }
}

/**
 * Hands a task to the supervisor behind `channel` and waits there for its outcome (see `raceOutcome`). Returns
 * the outcome when it came that way; otherwise the task's id when the supervisor accepted it (wait through the
 * database), or no id when the submission must be resent through the database (`addSubmitted`, same
 * submission id). Throws only what the database path cannot mend (a bad request), and the signal's reason when it
 * aborts before the supervisor accepted the task.
 */
export async function runDirect(
  channel: DirectChannel,
  request: Omit<DirectSubmit, 'wait'>,
  wait: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined; read: (id: string) => Promise<TaskSummaryRow | null>; onAccepted?: (id: string) => void },
): Promise<{ id: string | undefined; view: TaskView | null }> {
  const deadline = wait.timeoutMs === undefined ? undefined : Date.now() + wait.timeoutMs;
  // A caller told of the acceptance (`send --wait`, which names the task if interrupted) needs it at once; held
  // back, it comes no later than the caller's time runs out.
  const hold = wait.onAccepted ? undefined : Math.min(deferAcceptMs, wait.timeoutMs ?? deferAcceptMs);
  try {
    const accepted = await unlessAborted(channel.submit({ ...request, wait: true, deferAcceptMs: hold }), wait.signal);
    wait.onAccepted?.(accepted.id);
    const outcome = accepted.outcome;
    const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
    const view = outcome ? await raceOutcome(outcome, { timeoutMs, signal: wait.signal, read: () => wait.read(accepted.id) }) : null;
    return { id: accepted.id, view };
  } catch (error) {
    if (error instanceof PreforkError && retryThroughDatabase.has(error.code)) return { id: undefined, view: null };
    throw error;
  }
}

/**
 * `promise`, or a rejection with the signal's reason as soon as it aborts: the handed-over task goes on (as a
 * send through the database does when its caller gives up), and the abandoned promise's end is ignored.
 */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  promise.catch(() => {});
  return raceAbort(promise, signal);
}

/**
 * The direct outcome, or null when the time or the signal ran out first (the caller then asks the database).
 * Every `recheckMs` the task is also read from the database (`read`): a supervisor that stopped answering (frozen,
 * say, its lease then taken over by another) must not leave the sender waiting for a reply that cannot come.
 */
function raceOutcome(
  outcome: Promise<TaskView | null>,
  options: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined; read: () => Promise<TaskSummaryRow | null> },
): Promise<TaskView | null> {
  const { timeoutMs, signal, read } = options;
  return new Promise((resolve) => {
    let settled = false;
    let recheck: NodeJS.Timeout | undefined;
    const done = (view: TaskView | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(recheck);
      signal?.removeEventListener('abort', abort);
      resolve(view);
    };
    const abort = () => done(null);
    const timer = timeoutMs === undefined ? undefined : setTimeout(abort, timeoutMs);
    const schedule = () => {
      recheck = setTimeout(() => {
        read()
          .then((row) => {
            if (row && finalStates.has(row.state)) done(toTaskView(row));
          })
          .catch(() => {})
          .finally(() => {
            if (!settled) schedule();
          });
      }, recheckMs);
    };
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
    schedule();
    void outcome.then(done);
  });
}
