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

  /** One slot, for one connection: acquire once, release once. */
  slot(): ConnectionSlot {
    const requestId = this.#nextId++;
    let state: 'idle' | 'waiting' | 'held' | 'released' = 'idle';
    return {
      acquire: (signal) => {
        if (state !== 'idle') return Promise.resolve();
        state = 'waiting';
        return new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            this.#pending.delete(requestId);
            state = 'released';
            this.send({ type: 'slot_release', requestId });
            reject(new PreforkError('ABORTED', `gave up waiting for a database connection slot: ${String((signal?.reason as Error)?.message ?? signal?.reason)}`));
          };
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          this.#pending.set(requestId, () => {
            signal?.removeEventListener('abort', onAbort);
            state = 'held';
            resolve();
          });
          this.send({ type: 'slot_acquire', requestId });
        });
      },
      release: () => {
        if (state === 'released' || state === 'idle') {
          state = 'released';
          return;
        }
        if (state === 'waiting') this.#pending.delete(requestId);
        state = 'released';
        this.send({ type: 'slot_release', requestId });
      },
    };
  }
}
