/**
 * Keeps the wanted number of workers: respawns after crashes (backing off when workers cannot even start),
 * replaces workers at task boundaries (recycling, rolling reload) so that a replacement is ready before the
 * old one leaves, and scales up or down at run time.
 */
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { PreforkError } from '../errors.js';
import type { WorkerHandle } from './worker-handle.js';
import type { WorkerPool } from './worker-pool.js';

/**
 * Why a worker is replaced, which decides what happens when its replacement cannot start: after a `reload` or a
 * `recycle` (task count, memory) the old worker, sound, goes back to work; one to `retire` (past a hard limit,
 * or it asked after an uncaught error) keeps draining while the replacement is tried again.
 */
export type ReplaceKind = 'reload' | 'recycle' | 'retire';

/** Why workers fail to start: the last failure's message and time, and how many failed in a row. */
export interface StartupFailure {
  message: string;
  at: string;
  failures: number;
}

interface Replacement {
  old: WorkerHandle;
  kind: ReplaceKind;
  /** Told why, when the replacement exits before it is ready (a reload stops then). */
  failed?: ((reason: string) => void) | undefined;
}

/**
 * At most this many workers start at once (forked, not ready yet); more are forked as they become ready. A big
 * scale-up (`prefork scale 1000`, a typo for 10) forks in waves: the primary stays responsive (heartbeat, signals,
 * `scale` to correct it), and the database sees a few start-up checks at a time instead of a storm of connections.
 */
const workersStartingAtOnce = Math.max(4, 2 * availableParallelism());

export class Fleet {
  #startupFailures = 0;
  /** Why the last worker that could not start failed, while no worker has become ready since (for status). */
  #lastStartupFailure: StartupFailure | null = null;
  #pendingRespawns = 0;
  /** replacement worker id → the worker it replaces */
  readonly #replacing = new Map<number, Replacement>();
  /** worker id → why it could not start, as it said before exiting */
  readonly #startupErrors = new Map<number, string>();
  /** A replacement that could not start: recycling tries again from this time on (the respawn backoff). */
  #replaceAgainAt = 0;
  #respawning = false;
  /** Forking up to the wanted count: from start() until stopRespawning(). */
  #forking = false;

  constructor(
    private readonly pool: WorkerPool,
    private wantedCount: number,
    private readonly log: Logger,
  ) {}

  get wanted(): number {
    return this.wantedCount;
  }

  /** Workers that are, or will be, taking tasks. */
  /** Workers wanted and coming: those alive (ready or starting) and the respawns waiting out their backoff. */
  get active(): number {
    return this.#alive() + this.#pendingRespawns;
  }

  #alive(): number {
    return this.pool.handles.filter((h) => h.state === 'starting' || h.state === 'waiting_for_database' || h.state === 'ready').length;
  }

  /** Forks the first workers, in waves (`#fill`): the next each time one is ready. */
  start(): void {
    this.#forking = true;
    this.#fill();
  }

  startRespawning(): void {
    this.#respawning = true;
  }

  stopRespawning(): void {
    this.#respawning = false;
    this.#forking = false;
  }

  onReady(handle: WorkerHandle): void {
    this.#startupFailures = 0;
    this.#lastStartupFailure = null;
    this.#replaceAgainAt = 0;
    this.#fill();
    const old = this.#replacing.get(handle.id)?.old;
    if (!old) return;
    this.#replacing.delete(handle.id);
    this.log.info({ event: 'worker_replaced', workerId: old.id, workerPid: old.pid, replacementId: handle.id, replacementPid: handle.pid }, 'replacement ready; retiring the old worker');
    this.pool.retire(old);
  }

  onStartupFailed(handle: WorkerHandle, message: string): void {
    this.#startupFailures += 1;
    this.#startupErrors.set(handle.id, message);
    this.#lastStartupFailure = { message, at: new Date().toISOString(), failures: this.#startupFailures };
  }

  /** The last start-up failure, and how many in a row, while no worker has become ready since; else null. */
  get lastStartupFailure(): StartupFailure | null {
    return this.#lastStartupFailure;
  }

  /**
   * A worker exited. Returns true when that put an old worker back to work: the replacement of a reload or a
   * recycle exited before it was ready (the task module no longer loads, a start-up hook fails), and a broken
   * deploy must not take capacity away. A reload stops there; recycling tries again after the respawn backoff.
   */
  onExit(handle: WorkerHandle, info: { code: number | null; signal: string | null }): boolean {
    const why = this.#startupErrors.get(handle.id) ?? `it exited ${info.signal ? `on ${info.signal}` : `with code ${info.code}`} before it was ready`;
    this.#startupErrors.delete(handle.id);
    const replacement = this.#replacing.get(handle.id);
    this.#replacing.delete(handle.id);
    // (Still listed: it never became ready. An old worker that is gone too, killed at a hard limit, has a new
    // worker take its place below.)
    if (replacement && replacement.old.state === 'draining') {
      const { old } = replacement;
      if (replacement.kind === 'retire') {
        this.#later(() => this.replace(old, 'replacement failed', 'retire'));
        return false;
      }
      if (this.#respawning) {
        old.state = 'ready';
        // Past its task count (--max-tasks-per-worker) it would take nothing more: it runs on until a replacement
        // starts, tried again at a task boundary once the backoff has passed.
        old.maxTasks = Infinity;
        this.#replaceAgainAt = Date.now() + this.#backoffMs();
        this.log.warn(
          { event: 'worker_replacement_failed', workerId: old.id, workerPid: old.pid, replacementId: handle.id, reason: why },
          `worker ${old.id}'s replacement could not start (${why}); worker ${old.id} goes on taking tasks`,
        );
      }
      replacement.failed?.(why);
      return this.#respawning;
    }
    if (this.#respawning && this.active < this.wantedCount) {
      this.#pendingRespawns += 1;
      this.#later(() => {
        this.#pendingRespawns -= 1;
        this.#fill();
      });
    }
    return false;
  }

  /**
   * Stops giving `old` tasks, forks its replacement, and retires `old` once the replacement is ready. Recycling
   * waits while the respawn backoff of a replacement that could not start runs. False when nothing was forked.
   */
  replace(old: WorkerHandle, reason: string, kind: ReplaceKind, failed?: (reason: string) => void): boolean {
    if (!this.#respawning || (old.state !== 'ready' && old.state !== 'draining')) return false;
    if (kind === 'recycle' && Date.now() < this.#replaceAgainAt) return false;
    old.state = 'draining';
    // Its queued tasks go to the other workers now rather than wait for it.
    old.send({ type: 'unqueue' });
    const next = this.pool.fork();
    this.#replacing.set(next.id, { old, kind, failed });
    this.log.info({ event: 'worker_replacing', workerId: old.id, workerPid: old.pid, replacementId: next.id, reason }, `replacing worker: ${reason}`);
    return true;
  }

  /**
   * Rolling restart: one worker at a time, each replaced by a fresh process that loads the code anew. Every worker
   * forked before the reload began is replaced, those still starting too (they may have loaded the old module):
   * each once it is ready. Rejects with RELOAD_FAILED when a replacement exits before it is ready: the old worker
   * goes on, and so do those not replaced yet, with the code they had.
   */
  async reload(): Promise<void> {
    const forkedBefore = new Set(this.pool.handles.map((h) => h.id));
    // Draining ones (recycled, or past a hard limit) have a replacement coming, which is in the set if forked
    // before the reload; replacing the draining one too would leave a worker more than wanted.
    const toReplace = () => this.pool.handles.filter((h) => forkedBefore.has(h.id) && (h.state === 'ready' || h.state === 'starting' || h.state === 'waiting_for_database'));
    const workers = toReplace().length;
    this.log.info({ event: 'reload_started', workers }, 'rolling restart');
    let replaced = 0;
    for (let left = toReplace(); left.length > 0; left = toReplace()) {
      if (!this.#respawning) return;
      const old = left.find((h) => h.state === 'ready');
      if (!old) {
        // Only workers still starting are left: the first to be ready (or to exit) is next.
        await this.#nextReadyOrExit();
        continue;
      }
      const failure = await this.#replaceAndWait(old);
      if (failure !== null) {
        const message = `a new worker could not start: ${failure}; ${replaced} of ${workers} workers were replaced, the others kept the code they had`;
        this.log.error({ event: 'reload_failed', reason: failure, replaced, workers }, `reload stopped: ${message}`);
        throw new PreforkError('RELOAD_FAILED', message);
      }
      replaced += 1;
    }
    this.log.info({ event: 'reload_finished', replaced }, 'rolling restart finished');
  }

  scale(count: number): void {
    const before = this.wantedCount;
    this.wantedCount = count;
    this.log.info({ event: 'scale', from: before, to: count }, `scaling to ${count} workers`);
    this.#fill();
    // Respawns waiting out their backoff go first: none is forked when its time comes, if not wanted then.
    let extra = this.#alive() - count;
    // Workers not ready yet go first (nothing to finish, no capacity lost), then idle ones; busy ones finish their
    // tasks before they exit.
    const readyLast = (h: WorkerHandle) => (h.state === 'ready' ? 1 : 0);
    const candidates = this.pool.handles
      .filter((h) => h.state === 'ready' || h.state === 'starting' || h.state === 'waiting_for_database')
      .sort((a, b) => readyLast(a) - readyLast(b) || a.inFlight.size - b.inFlight.size);
    for (const h of candidates) {
      if (extra <= 0) break;
      this.pool.retire(h);
      extra -= 1;
    }
  }

  /** Forks workers up to the wanted count, `workersStartingAtOnce` starting at a time; onReady forks the next. */
  #fill(): void {
    const starting = () => this.pool.handles.filter((h) => h.state === 'starting' || h.state === 'waiting_for_database').length;
    while (this.#forking && this.active < this.wantedCount && starting() < workersStartingAtOnce) this.pool.fork();
  }

  #backoffMs(): number {
    return this.#startupFailures === 0 ? 0 : Math.min(30_000, 250 * 2 ** (this.#startupFailures - 1));
  }

  #later(fn: () => void): void {
    const wait = this.#backoffMs();
    if (wait > 0) this.log.warn({ event: 'worker_respawn_backoff', delayMs: wait, failures: this.#startupFailures }, 'workers keep failing to start; backing off');
    setTimeout(fn, wait).unref();
  }

  #nextReadyOrExit(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.pool.off('ready', done);
        this.pool.off('exit', done);
        resolve();
      };
      this.pool.on('ready', done);
      this.pool.on('exit', done);
    });
  }

  /** Replaces `old` for a reload: null once it has left (or was not replaced), or why its replacement could not start. */
  #replaceAndWait(old: WorkerHandle): Promise<string | null> {
    return new Promise((resolve) => {
      const done = (failure: string | null) => {
        this.pool.off('exit', onExit);
        resolve(failure);
      };
      const onExit = (h: WorkerHandle) => {
        if (h === old) done(null);
      };
      this.pool.on('exit', onExit);
      if (!this.replace(old, 'reload', 'reload', done)) {
        // Not replaced (stopping): it leaves with the stop, as before.
        if (old.state === 'exited') done(null);
      }
    });
  }
}
