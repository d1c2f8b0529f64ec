/**
 * pg-boss 10: 4 workers (work() × 4), each fetching up to `batchSize` jobs per poll, in one process.
 * Completion is an update to state 'completed'; W3 gets it through a row trigger and LISTEN.
 */
import { fileURLToPath } from 'node:url';
import PgBoss from 'pg-boss';
import { scope } from '../lib/cleanup.js';
import { checkRows, createRowsTable, databaseUrl, dropLater, freshSchema, query, quoteIdent } from '../lib/db.js';
import { IdWaiter } from '../lib/id-waiter.js';
import { listenConnection } from '../lib/listen.js';
import { startPeer } from '../lib/peer-process.js';
import { rssBytes, treePssBytes } from '../lib/proc.js';
import { latencyFigures, mb, perSecond } from '../lib/timing.js';
import { delay, waitUntilDone } from '../lib/wait.js';

const runnerScript = fileURLToPath(new URL('./pgboss-runner.js', import.meta.url));
export const batchSize = 100;
const queue = 'bench';
const insertBatch = 5_000;

function withRunner(fn) {
  return scope(async (defer) => {
    const schema = freshSchema('pgb');
    dropLater(defer, schema);
    const peer = await startPeer(defer, runnerScript, { url: databaseUrl, schema, queue, batchSize });
    const boss = new PgBoss({ connectionString: databaseUrl, schema, supervise: false, schedule: false, migrate: false, max: 2 });
    boss.on('error', () => {});
    await boss.start();
    defer('pg-boss sender', () => boss.stop({ graceful: false, wait: true, timeout: 2_000 }).catch(() => {}));
    return fn({ schema, peer, boss, defer });
  });
}

async function completed(schema) {
  const [r] = await query(`select count(*)::int as n from ${quoteIdent(schema)}.job where name = $1 and state = 'completed'`, [queue]);
  return r.n;
}

async function throughput({ schema, boss }, n, data) {
  const t0 = performance.now();
  for (let from = 1; from <= n; from += insertBatch) {
    const jobs = [];
    for (let i = from; i <= Math.min(n, from + insertBatch - 1); i++) jobs.push({ name: queue, data: data(i) });
    await boss.insert(jobs);
  }
  const t1 = await waitUntilDone(async () => n - (await completed(schema)), { total: n, t0, timeoutMs: 600_000, what: 'pg-boss to complete the jobs' });
  return t1 - t0;
}

export const workloads = {
  W1: ({ w1: n }) => withRunner(async (ctx) => ({ metrics: { 'W1 tasks/s': perSecond(n, await throughput(ctx, n, (i) => ({ kind: 'echo', i }))) } })),
  W2: ({ w2: n }) =>
    withRunner(async (ctx) => {
      await createRowsTable(ctx.schema);
      const ms = await throughput(ctx, n, (i) => ({ kind: 'insert', i }));
      return { metrics: { 'W2 tasks/s': perSecond(n, ms) }, checks: { W2: await checkRows(ctx.schema, n) } };
    }),
  // Polling bounds the latency (0.5 s interval), so fewer samples: `w3Polling`.
  W3: ({ w3Polling: n }) =>
    withRunner(async ({ schema, boss, defer }) => {
      const channel = `${schema}:done`;
      await query(`create function ${quoteIdent(schema)}.bench_done() returns trigger language plpgsql as $$
        begin perform pg_notify('${channel}', new.id::text); return null; end $$`);
      await query(`create trigger bench_done after update on ${quoteIdent(schema)}.job for each row
        when (new.state = 'completed' and old.state <> 'completed') execute function ${quoteIdent(schema)}.bench_done()`);
      const listener = await listenConnection(defer, [channel]);
      const done = new IdWaiter(listener, channel);
      const samples = [];
      for (let i = -2; i < n; i++) {
        const t0 = performance.now();
        const id = await boss.send(queue, { kind: 'echo', i });
        await done.wait(id);
        if (i >= 0) samples.push(performance.now() - t0);
      }
      return { metrics: latencyFigures(samples), samples: samples.length };
    }),
  idle: ({ idleMs }) =>
    withRunner(async ({ peer }) => {
      await delay(idleMs);
      return { metrics: { 'start ms': peer.startMs, 'RSS primary MB': mb(rssBytes(peer.pid)), 'PSS total MB': mb(treePssBytes(peer.pid)) } };
    }),
};
