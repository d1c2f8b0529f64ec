/**
 * The module-level connection cache: the one place a process may keep a database handle between tasks.
 *
 * This is the lesson from Celery's prefork pool: a handle created before (or while) a worker process starts
 * belongs to a context that is not the task's (another process, another event loop). Every worker resets
 * this cache when it comes online, closing whatever it holds, before it runs any task. Task modules that
 * need a handle at import time should put it here, so the reset can find it.
 *
 * The cache lives on globalThis so that two copies of the prefork package in one process still share it.
 */

type Closer<T> = (value: T) => unknown;

interface Entry {
  value: unknown;
  close: Closer<unknown>;
}

const cacheKey = Symbol.for('prefork.connectionCache');
const globals = globalThis as { [cacheKey]?: Map<string, Entry> };
const entries: Map<string, Entry> = (globals[cacheKey] ??= new Map());

export const connectionCache = {
  /** Returns the cached value for `key`, creating it with `create` the first time. */
  get<T>(key: string, create: () => T, close: Closer<T> = defaultClose): T {
    const hit = entries.get(key);
    if (hit) return hit.value as T;
    const value = create();
    entries.set(key, { value, close: close as Closer<unknown> });
    return value;
  },
  has(key: string): boolean {
    return entries.has(key);
  },
  get size(): number {
    return entries.size;
  },
  keys(): string[] {
    return [...entries.keys()];
  },
  /**
   * Closes and drops every entry. Errors from closing are collected, never thrown: a handle that cannot be
   * closed cleanly is dropped all the same. Returns what was reset.
   */
  async reset(): Promise<{ closed: string[]; errors: { key: string; error: unknown }[] }> {
    const snapshot = [...entries];
    entries.clear();
    const errors: { key: string; error: unknown }[] = [];
    await Promise.all(
      snapshot.map(async ([key, entry]) => {
        try {
          await entry.close(await entry.value);
        } catch (error) {
          errors.push({ key, error });
        }
      }),
    );
    return { closed: snapshot.map(([key]) => key), errors };
  },
};

/** Closes anything that looks like a client, pool, Kysely instance or disposable. */
async function defaultClose(value: unknown): Promise<void> {
  if (typeof value !== 'object' || value === null) return;
  const v = value as Record<string | symbol, unknown>;
  for (const method of ['destroy', 'end', 'close'] as const) {
    if (typeof v[method] === 'function') {
      await (v[method] as () => unknown).call(value);
      return;
    }
  }
  if (typeof v[Symbol.asyncDispose] === 'function') await (v[Symbol.asyncDispose] as () => unknown).call(value);
}
