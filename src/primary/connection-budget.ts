/**
 * The global connection budget: across all workers of a supervisor, at most `limit` task connections are
 * open at once. A task that needs one while the budget is spent waits its turn (first come, first served)
 * instead of failing with "too many clients". A worker's slots and requests die with it.
 */
import type { Logger } from 'pino';
import type { Queryable } from '../db/queryable.js';
import type { WorkerHandle } from './worker-handle.js';

interface Request {
  handle: WorkerHandle;
  requestId: number;
}

export class ConnectionBudget {
  #inUse = 0;
  #peak = 0;
  readonly #held = new Map<WorkerHandle, Set<number>>();
  readonly #waiting: Request[] = [];

  constructor(
    readonly limit: number,
    private readonly grant: (handle: WorkerHandle, requestId: number) => void,
  ) {}

  acquire(handle: WorkerHandle, requestId: number): void {
    if (this.#inUse < this.limit) this.#give({ handle, requestId });
    else this.#waiting.push({ handle, requestId });
  }

  release(handle: WorkerHandle, requestId: number): void {
    const held = this.#held.get(handle);
    if (held?.delete(requestId)) {
      this.#inUse -= 1;
      this.#next();
      return;
    }
    const i = this.#waiting.findIndex((r) => r.handle === handle && r.requestId === requestId);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  /** The worker exited: everything it held is free again. */
  releaseAll(handle: WorkerHandle): void {
    const held = this.#held.get(handle);
    this.#held.delete(handle);
    this.#inUse -= held?.size ?? 0;
    for (let i = this.#waiting.length - 1; i >= 0; i--) if (this.#waiting[i]!.handle === handle) this.#waiting.splice(i, 1);
    this.#next();
  }

  snapshot() {
    return { inUse: this.#inUse, limit: this.limit, waiting: this.#waiting.length, peak: this.#peak };
  }

  #next(): void {
    while (this.#inUse < this.limit && this.#waiting.length > 0) this.#give(this.#waiting.shift()!);
  }

  #give(r: Request): void {
    let held = this.#held.get(r.handle);
    if (!held) this.#held.set(r.handle, (held = new Set()));
    held.add(r.requestId);
    this.#inUse += 1;
    this.#peak = Math.max(this.#peak, this.#inUse);
    this.grant(r.handle, r.requestId);
  }
}

/** Connections the supervisor itself keeps: the queue pool and the LISTEN connection. */
export const supervisorOwnConnections = 5;

/**
 * The default budget: what the server allows ordinary sessions, less the supervisor's own connections
 * and a little room for the CLI and others. Never below 1.
 */
export function defaultBudget(server: { maxConnections: number; reserved: number }): number {
  return Math.max(1, server.maxConnections - server.reserved - supervisorOwnConnections - 3);
}

/** The budget for this supervisor: the option if given (with a warning when the server cannot honour it), else derived. */
export async function budgetLimit(db: Queryable, o: { maxDbConnections?: number | undefined; taskSlots: number }, log: Logger): Promise<number> {
  const { rows } = await db.query<{ max: number; reserved: number }>(
    `select current_setting('max_connections')::int as max,
            current_setting('superuser_reserved_connections')::int
              + coalesce(current_setting('reserved_connections', true)::int, 0) as reserved`,
  );
  const server = { maxConnections: rows[0]!.max, reserved: rows[0]!.reserved };
  const limit = o.maxDbConnections ?? defaultBudget(server);
  if (limit > server.maxConnections - supervisorOwnConnections) {
    log.warn(
      { event: 'db_budget_exceeds_server', maxDbConnections: limit, serverMaxConnections: server.maxConnections, supervisorOwn: supervisorOwnConnections },
      `--max-db-connections ${limit} is more than the server allows (max_connections ${server.maxConnections}, less ${supervisorOwnConnections} for the supervisor): tasks may fail with "too many clients"`,
    );
  }
  log.info({ event: 'db_budget', maxDbConnections: limit, serverMaxConnections: server.maxConnections, taskSlots: o.taskSlots }, `at most ${limit} task connections at once`);
  return limit;
}
