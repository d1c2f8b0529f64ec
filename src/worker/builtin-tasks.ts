import { setTimeout as delay } from 'node:timers/promises';
import { NonRetryableError } from '../errors.js';
import { defineTask, type TaskList } from '../task.js';

/** Always registered, in every worker: for smoke tests, health checks and benchmarks. */
export const builtinTasks: TaskList = {
  'prefork.echo': defineTask({ run: (payload: unknown) => payload }),
  'prefork.sleep': defineTask({
    run: async (payload: { ms?: unknown }, ctx) => {
      const ms = Number(payload?.ms ?? 0);
      if (!Number.isFinite(ms) || ms < 0) throw new NonRetryableError('prefork.sleep expects {"ms": a non-negative number}');
      await delay(ms, undefined, { signal: ctx.signal });
      return { sleptMs: ms };
    },
  }),
};
