/**
 * BullMQ 5 with a sandboxed processor (a child process per concurrent job), concurrency 4, on the machine's
 * Redis. Each run has its own queue under a per-harness key prefix, obliterated afterwards.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import { scope } from '../lib/cleanup.js';
import { checkRows, createRowsTable, databaseUrl, dropLater, freshSchema } from '../lib/db.js';
import { startPeer } from '../lib/peer-process.js';
import { childPids, rssBytes, treePssBytes, ussBytes } from '../lib/proc.js';
import { latencyFigures, mb, perSecond } from '../lib/timing.js';
import { delay, pollUntil, waitUntilDone } from '../lib/wait.js';
import { redisConnection } from './redis.js';

const runnerScript = fileURLToPath(new URL('./bullmq-runner.js', import.meta.url));
const prefix = `bench_${process.pid}`;
const addBatch = 1_000;

function withRunner(fn) {
  return scope(async (defer) => {
    const name = `q_${randomBytes(3).toString('hex')}`;
    const queue = new Queue(name, { connection: redisConnection, prefix });
    queue.on('error', () => {});
    defer(`bullmq queue ${name}`, async () => {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close().catch(() => {});
    });
    await queue.waitUntilReady();
    const peer = await startPeer(defer, runnerScript, { queue: name, connection: redisConnection, prefix });
    const events = async () => {
      const qe = new QueueEvents(name, { connection: redisConnection, prefix });
      qe.on('error', () => {});
      defer('bullmq queue events', () => qe.close().catch(() => {}));
      await qe.waitUntilReady();
      return qe;
    };
    return fn({ queue, peer, events, defer });
  });
}

async function throughput(queue, n, data) {
  const t0 = performance.now();
  for (let from = 1; from <= n; from += addBatch) {
    const jobs = [];
    for (let i = from; i <= Math.min(n, from + addBatch - 1); i++) jobs.push({ name: 'job', data: data(i) });
    await queue.addBulk(jobs);
  }
  const t1 = await waitUntilDone(async () => n - (await queue.getCompletedCount()), { total: n, t0, what: 'BullMQ to complete the jobs' });
  const ms = t1 - t0;
  const failed = await queue.getFailedCount();
  if (failed > 0) throw new Error(`${failed} BullMQ jobs failed`);
  return ms;
}

export const workloads = {
  W1: ({ w1: n }) => withRunner(async ({ queue }) => ({ metrics: { 'W1 tasks/s': perSecond(n, await throughput(queue, n, (i) => ({ kind: 'echo', i }))) } })),
  W2: ({ w2: n }) =>
    withRunner(async ({ queue, defer }) => {
      const schema = freshSchema('bull');
      dropLater(defer, schema);
      await createRowsTable(schema);
      const ms = await throughput(queue, n, (i) => ({ kind: 'insert', url: databaseUrl, schema, i }));
      return { metrics: { 'W2 tasks/s': perSecond(n, ms) }, checks: { W2: await checkRows(schema, n) } };
    }),
  W3: ({ w3: n }) =>
    withRunner(async ({ queue, events }) => {
      const qe = await events();
      const samples = [];
      for (let i = -10; i < n; i++) {
        const t0 = performance.now();
        const job = await queue.add('job', { kind: 'echo', i });
        await job.waitUntilFinished(qe, 30_000);
        if (i >= 0) samples.push(performance.now() - t0);
      }
      return { metrics: latencyFigures(samples), samples: samples.length };
    }),
  // W4a: the sandbox notices its child's death and fails the attempt; with attempts: 2 it runs again at once.
  W4: () =>
    withRunner(async ({ queue, events }) => {
      const qe = await events();
      const pidFile = join(tmpdir(), `prefork-bench-${process.pid}-bullmq.pid`);
      rmSync(pidFile, { force: true });
      try {
        const job = await queue.add('job', { kind: 'crashOnce', pidFile }, { attempts: 2 });
        const pid = await pollUntil(() => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')), { timeoutMs: 15_000, intervalMs: 5, what: 'the BullMQ crash job to start' });
        process.kill(pid, 'SIGKILL');
        const t0 = performance.now();
        const result = await job.waitUntilFinished(qe, 30_000);
        const ms = performance.now() - t0;
        if (result?.firstAttempt !== false) throw new Error(`the crashed BullMQ job returned ${JSON.stringify(result)}`);
        return { metrics: { 'W4a ms': ms } };
      } finally {
        rmSync(pidFile, { force: true });
      }
    }),
  // Sandbox children start on demand: four overlapping jobs bring up all four before the idle measurement.
  idle: ({ idleMs }) =>
    withRunner(async ({ queue, peer, events }) => {
      const qe = await events();
      const jobs = await queue.addBulk([1, 2, 3, 4].map(() => ({ name: 'job', data: { kind: 'sleep', ms: 300 } })));
      await Promise.all(jobs.map((j) => j.waitUntilFinished(qe, 30_000)));
      await delay(idleMs);
      const kids = childPids(peer.pid).map(rssBytes).filter((r) => r !== null);
      const unique = childPids(peer.pid).map(ussBytes).filter((r) => r !== null);
      return {
        metrics: {
          'start ms': peer.startMs,
          'RSS primary MB': mb(rssBytes(peer.pid)),
          'RSS worker MB': kids.length ? mb(kids.reduce((a, b) => a + b, 0) / kids.length) : null,
          'USS worker MB': unique.length ? mb(unique.reduce((a, b) => a + b, 0) / unique.length) : null,
          'PSS total MB': mb(treePssBytes(peer.pid)),
        },
        detail: { sandboxChildren: kids.length },
      };
    }),
};
