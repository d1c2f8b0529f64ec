/**
 * The systems measured: prefork, the physical limits, and the peers. A peer's module is imported only when
 * it is selected, so one that cannot load is reported as skipped with the reason instead of failing the run.
 */
import { unixSocketUrl } from './lib/db.js';

const noHardLimit = (what) => `no hard time limit: ${what}`;

export async function loadSystems(only) {
  const systems = [];
  const skipped = [];
  const add = (s) => systems.push(s);
  const skip = (id, label, reason) => skipped.push({ id, label, reason });

  if (only.includes('prefork')) {
    const pf = await import('./workloads/prefork.js');
    add({ id: 'prefork', label: 'prefork (4 workers)', workloads: { W1: pf.w1, W2: pf.w2, W3: pf.w3, W4: pf.w4, idle: pf.idle } });
  }

  if (only.includes('raw')) {
    const raw = await import('./workloads/raw.js');
    add({ id: 'raw-ipc', label: 'limit: cluster IPC', workloads: { W1: (s) => raw.ipc(s, ['W1']), W3: (s) => raw.ipc(s, ['W3']) } });
    add({ id: 'raw-tcp', label: 'limit: connect/task TCP', workloads: { W2: raw.connect('tcp') } });
    if (unixSocketUrl()) add({ id: 'raw-unix', label: 'limit: connect/task unix', workloads: { W2: raw.connect('unix') } });
    else skip('raw-unix', 'limit: connect/task unix', 'the database is not local or has no Unix socket in /var/run/postgresql or /tmp');
  }

  const peer = async (id, label, load) => {
    try {
      add({ id, label, peer: true, ...(await load()) });
    } catch (error) {
      skip(id, label, error.message.split('\n')[0]);
    }
  };

  if (only.includes('graphile')) {
    const crash = 'a killed worker leaves its job locked until the lock expires (4 h), then the next run of the pool picks it up';
    for (const batched of [false, true]) {
      await peer(batched ? 'graphile-batched' : 'graphile', `graphile-worker${batched ? ' batched' : ''}`, async () => {
        const g = await import('./peers/graphile.js');
        return {
          config: batched ? 'concurrentJobs 4, localQueue {size: 500}, completeJobBatchDelay 0, failJobBatchDelay 0' : 'concurrentJobs 4, defaults',
          workloads: g.workloads(batched),
          na: { 'W4a ms': crash, 'W4b ms': noHardLimit('jobs run on the worker\'s own event loop; a busy loop blocks the whole pool'), 'RSS worker MB': 'jobs run inside the one process' },
        };
      });
    }
  }

  if (only.includes('pgboss')) {
    await peer('pgboss', 'pg-boss', async () => {
      const p = await import('./peers/pgboss.js');
      return {
        config: `4 × work({batchSize: ${p.batchSize}, pollingIntervalSeconds: 0.5}); polling, no LISTEN`,
        workloads: p.workloads,
        na: {
          'W4a ms': 'a killed worker\'s job is retried only after it expires (expireInSeconds, default 15 min), found by maintenance',
          'W4b ms': noHardLimit('expiry rejects the handler\'s promise, but a busy loop blocks the process and its timers'),
          'RSS worker MB': 'jobs run inside the one process',
        },
      };
    });
  }

  if (only.includes('bullmq')) {
    await peer('bullmq', 'BullMQ sandboxed', async () => {
      const { ensureRedis } = await import('./peers/redis.js');
      const reason = await ensureRedis();
      if (reason) throw new Error(reason);
      const b = await import('./peers/bullmq.js');
      return {
        config: 'Worker concurrency 4, sandboxed processor (child processes), Redis 127.0.0.1:6379',
        workloads: b.workloads,
        na: { 'W4b ms': noHardLimit('BullMQ has no per-job timeout (a sandboxed busy loop runs on, its lock renewed by the parent)') },
      };
    });
  }
  return { systems, skipped };
}
