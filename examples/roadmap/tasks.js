// The scenario prefork exists for: a web request asks for a learning roadmap, which takes seconds of
// LLM calls and several database writes. It runs as a task, in a worker process, on its own connection.
//
//   psql "$DATABASE_URL" -f examples/roadmap/schema.sql      (tables, and learner 1)
//   npx prefork start --workers 4 --tasks examples/roadmap/tasks.js
//   npx prefork send roadmap.generate '{"learnerId": 1}' --wait
//
// Without DATABASE_URL (the embedded PostgreSQL), start first, then give psql the URL it wrote:
//   psql "$(node -p 'require("./.prefork/state.json").connectionString')" -f examples/roadmap/schema.sql
import { setTimeout as sleep } from 'node:timers/promises';
import { defineTask, NonRetryableError } from 'prefork/task';

/** Stands in for the LLM: slow, and it honours the task's signal (time limits, cancel, shutdown). */
async function draftSteps(goal, { signal, thinkMs }) {
  await sleep(thinkMs, undefined, { signal });
  return ['Foundations', 'Core practice', `Project: ${goal}`, 'Review and next steps'];
}

export default {
  'roadmap.generate': defineTask({
    maxAttempts: 3,
    backoff: { type: 'exponential', baseMs: 2_000, maxMs: 60_000 },
    softTimeoutMs: 60_000, // ctx.signal aborts: the LLM call stops
    hardTimeoutMs: 90_000, // the primary cancels the query and, if need be, replaces the worker
    statementTimeoutMs: 10_000,
    // The LLM API's quota, across every worker of every supervisor: 60 calls a minute, 4 at a time.
    rateLimit: { count: 60, intervalMs: 60_000 },
    maxRunning: 4,
    run: async ({ learnerId, thinkMs = 2_000 }, ctx) => {
      // ctx.db is this task's own connection: opened on the first query, closed when the task settles.
      const learner = await ctx.db.selectFrom('learners').select(['id', 'name', 'goal']).where('id', '=', learnerId).executeTakeFirst();
      if (!learner) throw new NonRetryableError(`no learner ${learnerId}`);

      // The web app polling Client.get(id) shows how far it is.
      ctx.progress({ stage: 'drafting' });
      // The slow part runs outside any transaction: no connection is held idle in a transaction meanwhile.
      const steps = await draftSteps(learner.goal, { signal: ctx.signal, thinkMs });

      ctx.progress({ stage: 'saving', steps: steps.length });
      // The writes, in one serializable transaction, rerun as a whole on a serialization failure (two
      // roadmaps for one learner at once), a deadlock, or a connection lost before commit.
      const roadmap = await ctx.transaction(async (trx) => {
        const { next } = await trx
          .selectFrom('roadmaps')
          .select((eb) => eb.fn.coalesce(eb.fn.max('version'), eb.lit(0)).as('next'))
          .where('learner_id', '=', learnerId)
          .executeTakeFirstOrThrow();
        const row = await trx
          .insertInto('roadmaps')
          .values({ learner_id: learnerId, version: Number(next) + 1 })
          .returning(['id', 'version'])
          .executeTakeFirstOrThrow();
        await trx
          .insertInto('roadmap_steps')
          .values(steps.map((title, i) => ({ roadmap_id: row.id, position: i + 1, title })))
          .execute();
        return row;
      }, { isolationLevel: 'serializable' });
      ctx.log.info({ learnerId, roadmapId: roadmap.id }, 'roadmap generated');
      return { roadmapId: String(roadmap.id), version: roadmap.version, steps };
    },
  }),
};
