/**
 * Forks and watches the worker processes. It knows processes, not tasks: what a worker says and how it
 * ends are events for the supervisor. A worker is given work only after its application-level `ready`.
 */
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { SerializedError } from '../errors.js';
import { dispatchMessage, isWorkerMessage, type MessageHandlers, type WorkerMessage } from '../protocol.js';
import { encodeWorkerConfig, workerConfigEnv, type WorkerConfig } from '../worker/worker-config.js';
import { OrphanGuard } from './orphan-guard.js';
import { WorkerHandle, type InFlightTask } from './worker-handle.js';

/** The codes of an IPC write that failed because the worker's end of the channel is closed: it is gone or going. */
const closedChannelCodes = new Set(['EPIPE', 'ECONNRESET', 'ERR_IPC_CHANNEL_CLOSED']);

const workerMain = fileURLToPath(new URL('../worker/main.js', import.meta.url));

export interface WorkerPoolEvents {
  ready: [handle: WorkerHandle];
  startupFailed: [handle: WorkerHandle, error: SerializedError];
  /** A worker exited. `planned` is false for a crash: the supervisor redelivers its tasks. */
  exit: [handle: WorkerHandle, info: { code: number | null; signal: string | null; planned: boolean }];
  message: [handle: WorkerHandle, message: WorkerMessage];
}

export interface WorkerPoolOptions {
  concurrency: number;
  /** Tasks a worker may be given in all before it is recycled; absent: no limit. */
  maxTasksPerWorker?: number | undefined;
  /** The longest queue of short tasks a worker is sent beyond its free slots. */
  maxQueue: number;
  /** A task started on a worker (by the primary's reckoning: see WorkerHandle). */
  onTaskStart: (handle: WorkerHandle, f: InFlightTask) => void;
  /** Read at each fork: what the worker is told. */
  workerConfig: () => WorkerConfig;
  log: Logger;
}

export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  readonly #workers = new Map<number, WorkerHandle>();
  readonly #options: WorkerPoolOptions;
  /** Kills the workers should this process die without stopping them (started at the first fork). */
  readonly #guard: OrphanGuard;

  constructor(options: WorkerPoolOptions) {
    super();
    this.#options = options;
    this.#guard = new OrphanGuard(options.log);
    cluster.setupPrimary({ exec: workerMain, args: [] });
  }

  get handles(): WorkerHandle[] {
    return [...this.#workers.values()];
  }

  get size(): number {
    return this.#workers.size;
  }

  /** Tasks handed to the workers whose outcome has not arrived yet (running or queued on a worker). */
  get inFlight(): number {
    let n = 0;
    for (const h of this.#workers.values()) n += h.inFlight.size;
    return n;
  }

  fork(): WorkerHandle {
    const worker = cluster.fork({ [workerConfigEnv]: encodeWorkerConfig(this.#options.workerConfig()) });
    const handle = new WorkerHandle(worker, this.#options.concurrency);
    if (this.#options.maxTasksPerWorker) handle.maxTasks = this.#options.maxTasksPerWorker;
    handle.maxQueue = this.#options.maxQueue;
    handle.onStart = (f) => this.#options.onTaskStart(handle, f);
    this.#workers.set(handle.id, handle);
    this.#guard.add(handle.pid);
    this.#options.log.info({ event: 'worker_forked', workerId: handle.id, workerPid: handle.pid }, 'worker forked');
    const handlers = this.#handlersFor(handle);
    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) dispatchMessage(handlers, message);
    });
    worker.on('error', (error) => {
      // A message written just as the worker went (it exited, its end of the channel closed, and the primary has
      // not read that yet): lost with the worker, whose exit is logged and handled (its tasks go back). Not a fault.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined && closedChannelCodes.has(code)) {
        this.#options.log.debug({ event: 'worker_ipc_closed', workerId: handle.id, code }, 'a message to a worker that is gone was not delivered');
        return;
      }
      this.#options.log.warn({ event: 'worker_ipc_error', workerId: handle.id, err: error }, 'worker IPC error');
    });
    worker.on('exit', (code, signal) => {
      const planned = handle.state === 'stopping' || worker.exitedAfterDisconnect === true;
      handle.state = 'exited';
      this.#workers.delete(handle.id);
      this.#guard.remove(handle.pid);
      this.emit('exit', handle, { code, signal, planned });
    });
    return handle;
  }

  /** Every worker has exited: the guard goes too. Forks after it are unguarded. */
  close(): void {
    this.#guard.close();
  }

  /** Planned stop: the worker finishes what it runs, then exits. */
  retire(handle: WorkerHandle): void {
    if (handle.state === 'exited') return;
    // Not ready yet: no task to finish, and a message may arrive before the worker listens for messages.
    const starting = handle.state === 'starting' || handle.state === 'waiting_for_database';
    handle.state = 'stopping';
    if (starting) return this.kill(handle);
    if (!handle.send({ type: 'shutdown' })) handle.worker.process.kill('SIGKILL');
  }

  kill(handle: WorkerHandle, signal: NodeJS.Signals = 'SIGKILL'): void {
    try {
      handle.worker.process.kill(signal);
    } catch {
      // already gone
    }
  }

  /** Lifecycle messages are handled here; task messages go to the supervisor. */
  #handlersFor(handle: WorkerHandle): MessageHandlers<WorkerMessage> {
    const forward = (message: WorkerMessage) => this.emit('message', handle, message);
    const handlers: MessageHandlers<WorkerMessage> = {
      ready: (m) => {
        if (handle.state !== 'starting' && handle.state !== 'waiting_for_database') return;
        handle.becameReady(m.tasks);
        this.emit('ready', handle);
      },
      startup_failed: (m) => {
        handle.state = 'stopping';
        this.emit('startupFailed', handle, m.error);
      },
      heartbeat: (m) => {
        handle.heartbeat(m.rss, m.loopLagMs);
        forward(m);
      },
      database_wait: (m) => {
        if (handle.state === 'starting') handle.state = 'waiting_for_database';
        forward(m);
      },
      budget_query: forward,
      slot_acquire: forward,
      slot_release: forward,
      db_backend: forward,
      task_succeeded: forward,
      task_failed: forward,
      progress: forward,
      retire: forward,
      unqueued: (m) => {
        handle.unqueuePending = false;
        forward(m);
      },
      batch: (m) => {
        for (const inner of m.messages) if (inner.type !== 'batch') dispatchMessage(handlers, inner);
      },
    };
    return handlers;
  }
}
