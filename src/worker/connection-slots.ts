/**
 * The worker's side of the connection budget: a slot is asked of the primary over IPC and granted when the
 * supervisor's budget allows. Waiting honours the task's signal.
 */
import { PreforkError } from '../errors.js';
import type { WorkerMessage } from '../protocol.js';

export interface ConnectionSlot {
  acquire(signal?: AbortSignal): Promise<void>;
  release(): void;
}

export class ConnectionSlots {
  #nextId = 1;
  readonly #pending = new Map<number, () => void>();

  constructor(private readonly send: (message: WorkerMessage) => void) {}

  /** The primary granted request `requestId`. */
  granted(requestId: number): void {
    const resolve = this.#pending.get(requestId);
    this.#pending.delete(requestId);
    if (resolve) resolve();
    else this.send({ type: 'slot_release', requestId }); // nobody waits any more: give it back
  }

  /**
   * A slot for one connection at a time: acquire before connecting, release once closed. It may be acquired
   * again after a release (a task that reconnects); each acquisition is a new request to the primary.
   */
  slot(): ConnectionSlot {
    let held: number | null = null;
    return {
      acquire: (signal) => {
        if (held !== null) return Promise.resolve();
        const requestId = this.#nextId++;
        return new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            this.#pending.delete(requestId);
            this.send({ type: 'slot_release', requestId });
            reject(new PreforkError('ABORTED', `gave up waiting for a database connection slot: ${String((signal?.reason as Error)?.message ?? signal?.reason)}`));
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          this.#pending.set(requestId, () => {
            signal?.removeEventListener('abort', onAbort);
            held = requestId;
            resolve();
          });
          this.send({ type: 'slot_acquire', requestId });
        });
      },
      release: () => {
        if (held === null) return;
        this.send({ type: 'slot_release', requestId: held });
        held = null;
      },
    };
  }
}
