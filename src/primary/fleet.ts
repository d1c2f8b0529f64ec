/**
 * Keeps the wanted number of workers: respawns after crashes (backing off when workers cannot even start),
 * replaces workers at task boundaries (recycling, rolling reload) so that a replacement is ready before the
 * old one leaves, and scales up or down at run time.
 */
import type { Logger } from 'pino';
import type { WorkerHandle } from './worker-handle.js';
import type { WorkerPool } from './worker-pool.js';

export class Fleet {
  #startupFailures = 0;
  #pendingRespawns = 0;
  /** replacement worker id → the worker it replaces */
  readonly #replacing = new Map<number, WorkerHandle>();
  #respawning = false;

  constructor(
    private readonly pool: WorkerPool,
    private wantedCount: number,
    private readonly log: Logger,
  ) {}

  get wanted(): number {
    return this.wantedCount;
  }

  /** Workers that are, or will be, taking tasks. */
  get active(): number {
    return this.pool.handles.filter((h) => h.state === 'starting' || h.state === 'waiting_for_database' || h.state === 'ready').length + this.#pendingRespawns;
  }

  startRespawning(): void {
    this.#respawning = true;
  }

  stopRespawning(): void {
    this.#respawning = false;
  }

  onReady(handle: WorkerHandle): void {
    this.#startupFailures = 0;
    const old = this.#replacing.get(handle.id);
    if (!old) return;
    this.#replacing.delete(handle.id);
    this.log.info({ event: 'worker_replaced', workerId: old.id, workerPid: old.pid, replacementId: handle.id, replacementPid: handle.pid }, 'replacement ready; retiring the old worker');
    this.pool.retire(old);
  }

  onStartupFailed(): void {
    this.#startupFailures += 1;
  }

  onExit(handle: WorkerHandle): void {
    const old = this.#replacing.get(handle.id);
    if (old) {
      // The replacement died before it was ready: try again, the old worker keeps draining meanwhile (or, if it
      // is gone too, killed at a hard limit, a new worker takes its place).
      this.#replacing.delete(handle.id);
      if (old.state === 'draining') {
        this.#later(() => this.replace(old, 'replacement failed'));
        return;
      }
    }
    if (this.#respawning && this.active < this.wantedCount) {
      this.#pendingRespawns += 1;
      this.#later(() => {
        this.#pendingRespawns -= 1;
        if (this.#respawning && this.active < this.wantedCount) this.pool.fork();
      });
    }
  }

  /** Stops giving `old` tasks, forks its replacement, and retires `old` once the replacement is ready. */
  replace(old: WorkerHandle, reason: string): void {
    if (!this.#respawning || (old.state !== 'ready' && old.state !== 'draining')) return;
    old.state = 'draining';
    // Its queued tasks go to the other workers now rather than wait for it.
    old.send({ type: 'unqueue' });
    const next = this.pool.fork();
    this.#replacing.set(next.id, old);
    this.log.info({ event: 'worker_replacing', workerId: old.id, workerPid: old.pid, replacementId: next.id, reason }, `replacing worker: ${reason}`);
  }

  /** Rolling restart: one worker at a time, each replaced by a fresh process that loads the code anew. */
  async reload(): Promise<void> {
    const olds = this.pool.handles.filter((h) => h.state === 'ready' || h.state === 'starting');
    this.log.info({ event: 'reload_started', workers: olds.length }, 'rolling restart');
    for (const old of olds) {
      if (!this.#respawning) return;
      if (old.state === 'starting') continue;
      const gone = this.#exited(old);
      this.replace(old, 'reload');
      await gone;
    }
    this.log.info({ event: 'reload_finished' }, 'rolling restart finished');
  }

  scale(count: number): void {
    const before = this.wantedCount;
    this.wantedCount = count;
    this.log.info({ event: 'scale', from: before, to: count }, `scaling to ${count} workers`);
    for (let n = this.active; n < count; n++) this.pool.fork();
    let extra = this.active - count;
    // Idle workers go first; busy ones finish their tasks before they exit.
    const candidates = this.pool.handles
      .filter((h) => h.state === 'ready' || h.state === 'starting')
      .sort((a, b) => a.inFlight.size - b.inFlight.size);
    for (const h of candidates) {
      if (extra <= 0) break;
      this.pool.retire(h);
      extra -= 1;
    }
  }

  #later(fn: () => void): void {
    const wait = this.#startupFailures === 0 ? 0 : Math.min(30_000, 250 * 2 ** (this.#startupFailures - 1));
    if (wait > 0) this.log.warn({ event: 'worker_respawn_backoff', delayMs: wait, failures: this.#startupFailures }, 'workers keep failing to start; backing off');
    setTimeout(fn, wait).unref();
  }

  #exited(handle: WorkerHandle): Promise<void> {
    return new Promise((resolve) => {
      const onExit = (h: WorkerHandle) => {
        if (h !== handle) return;
        this.pool.off('exit', onExit);
        resolve();
      };
      this.pool.on('exit', onExit);
    });
  }
}
