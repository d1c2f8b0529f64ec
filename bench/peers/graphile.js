/**
 * graphile-worker 0.17 (one Node process running 4 jobs at once; jobs are deleted when they succeed).
 * "default": its defaults; "batched": localQueue 500 and batched completion (its documented performance set-up).
 */
import { fileURLToPath } from 'node:url';
import { makeWorkerUtils } from 'graphile-worker';
import { scope } from '../lib/cleanup.js';
import { checkRows, createRowsTable, databaseUrl, dropLater, freshSchema, query, quoteIdent } from '../lib/db.js';
import { IdWaiter } from '../lib/id-waiter.js';
import { listenConnection } from '../lib/listen.js';
import { startPeer } from '../lib/peer-process.js';
import { rssBytes, treePssBytes } from '../lib/proc.js';
import { latencyFigures, mb, perSecond } from '../lib/timing.js';
import { delay, waitUntilDone } from '../lib/wait.js';

const runnerScript = fileURLToPath(new URL('./graphile-runner.js', import.meta.url));
const batch = 5_000;

function withRunner(batched, fn) {
  return scope(async (defer) => {
    const schema = freshSchema(batched ? 'gwb' : 'gw');
    dropLater(defer, schema);
    const peer = await startPeer(defer, runnerScript, { url: databaseUrl, schema, batched });
    const utils = await makeWorkerUtils({ connectionString: databaseUrl, schema });
    defer('graphile worker utils', () => utils.release());
    return fn({ schema, peer, utils, defer });
  });
}

async function remaining(schema) {
  const [r] = await query(`select count(*)::int as n from ${quoteIdent(schema)}._private_jobs`);
  return r.n;
}

async function throughput({ schema, utils }, identifier, n, payload) {
  const t0 = performance.now();
  for (let from = 1; from <= n; from += batch) {
    const specs = [];
    for (let i = from; i <= Math.min(n, from + batch - 1); i++) specs.push({ identifier, payload: payload(i) });
    await utils.addJobs(specs);
  }
  const t1 = await waitUntilDone(() => remaining(schema), { total: n, t0, what: 'graphile-worker to finish the jobs' });
  return t1 - t0;
}

export function workloads(batched) {
  return {
    W1: ({ w1: n }) => withRunner(batched, async (ctx) => ({ metrics: { 'W1 tasks/s': perSecond(n, await throughput(ctx, 'bench_echo', n, (i) => ({ i }))) } })),
    W2: ({ w2: n }) =>
      withRunner(batched, async (ctx) => {
        await createRowsTable(ctx.schema);
        const ms = await throughput(ctx, 'bench_insert', n, (i) => ({ schema: ctx.schema, i }));
        return { metrics: { 'W2 tasks/s': perSecond(n, ms) }, checks: { W2: await checkRows(ctx.schema, n) } };
      }),
    W3: ({ w3: n }) =>
      withRunner(batched, async ({ schema, defer }) => {
        // Success deletes the job: a row trigger notifies its id, and the sender LISTENs (as prefork's TaskWaiter).
        const channel = `${schema}:done`;
        await query(`create function ${quoteIdent(schema)}.bench_done() returns trigger language plpgsql as $$
          begin perform pg_notify('${channel}', old.id::text); return null; end $$`);
        await query(`create trigger bench_done after delete on ${quoteIdent(schema)}._private_jobs for each row execute function ${quoteIdent(schema)}.bench_done()`);
        const listener = await listenConnection(defer, [channel]);
        const done = new IdWaiter(listener, channel);
        const samples = [];
        for (let i = -10; i < n; i++) {
          const t0 = performance.now();
          const { rows } = await listener.query(`select (${quoteIdent(schema)}.add_job('bench_echo', $1::json)).id::text as id`, [JSON.stringify({ i })]);
          await done.wait(rows[0].id);
          if (i >= 0) samples.push(performance.now() - t0);
        }
        return { metrics: latencyFigures(samples), samples: samples.length };
      }),
    idle: ({ idleMs }) =>
      withRunner(batched, async ({ peer }) => {
        await delay(idleMs);
        return { metrics: { 'start ms': peer.startMs, 'RSS primary MB': mb(rssBytes(peer.pid)), 'PSS total MB': mb(treePssBytes(peer.pid)) } };
      }),
  };
}
