// The benchmark's task module for `prefork start --tasks bench/tasks.js`: the same handlers the peers run.
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { defineTask } from 'prefork/task';

export default {
  // W1, W3: returns its input.
  'bench.echo': (payload) => payload,

  // W2: one row through this attempt's own connection (opened by the first query, closed when the task settles).
  'bench.insert': async ({ schema, i }, ctx) => {
    await ctx.sql`insert into ${ctx.sql.id(schema, 'bench_rows')} (task_no) values (${i})`.execute(ctx.db);
    return null;
  },

  // W4a: the first attempt tells the harness its pid and sleeps (to be SIGKILLed); the redelivery returns at once.
  'bench.crashOnce': defineTask({
    maxAttempts: 2,
    backoff: { type: 'none' },
    run: async ({ pidFile }, ctx) => {
      if (ctx.attempt === 1) {
        writeFileSync(pidFile, String(process.pid));
        await delay(10_000, undefined, { signal: ctx.signal });
      }
      return { attempt: ctx.attempt, pid: process.pid };
    },
  }),

  // W4b: a busy loop that ignores its signal, past a 500 ms hard limit.
  'bench.spin': defineTask({
    hardTimeoutMs: 500,
    maxAttempts: 1,
    run: () => {
      const end = Date.now() + 30_000;
      while (Date.now() < end);
      return 'spun';
    },
  }),
};
