import { setTimeout as delay } from 'node:timers/promises';
import { NonRetryableError } from '../errors.js';
import { defineTask, type TaskList } from '../task.js';

/** Always registered, in every worker: for smoke tests, health checks and benchmarks. */
export const builtinTasks: TaskList = {
  'prefork.echo': defineTask({ run: (payload: unknown) => payload }),
  'prefork.sleep': defineTask({
    run: async (payload: unknown, ctx) => {
      // Whatever is not {"ms": n} ("abc", {}, {"ms": "500"}) is a slip to be told of, not a sleep of 0 ms. A Node
      // timer holds at most 2^31 − 1 ms; a longer one fires after 1 ms.
      const ms = (payload as { ms?: unknown } | null | undefined)?.ms;
      if (typeof ms !== 'number' || !(ms >= 0 && ms <= 2_147_483_647)) {
        throw new NonRetryableError('prefork.sleep expects {"ms": a number of milliseconds from 0 to 2147483647}');
      }
      await delay(ms, undefined, { signal: ctx.signal });
      return { sleptMs: ms };
    },
  }),
};
