/** prefork on each workload: a real `prefork start --workers 4` subprocess on a fresh schema per run. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Client } from '../../dist/client/client.js';
import { addTask } from '../../dist/queue/add-task.js';
import { TaskWaiter } from '../../dist/queue/task-waiter.js';
import { scope } from '../lib/cleanup.js';
import { checkRows, createRowsTable, databaseUrl, dropLater, freshSchema, query, quoteIdent } from '../lib/db.js';
import { SupervisorProcess } from '../lib/prefork-process.js';
import { childPids, commandLine, rssBytes, treePssBytes, ussBytes } from '../lib/proc.js';
import { latencyFigures, mb, perSecond } from '../lib/timing.js';
import { delay, pollUntil, waitUntilDone } from '../lib/wait.js';

const insertBatch = 5_000;

/** Runs `fn(sup, schema, defer)` against a fresh supervisor on a fresh schema, then stops it and drops the schema. */
function withSupervisor(logLevel, fn) {
  return scope(async (defer) => {
    const schema = freshSchema('pf');
    dropLater(defer, schema);
    const sup = SupervisorProcess.start(defer, schema, { logLevel });
    await sup.ready();
    return fn(sup, schema, defer);
  });
}

/** Inserts `n` tasks in multi-row statements: one NOTIFY per statement, as a bulk producer would. */
async function insertTasks(schema, name, n, payloadSql) {
  for (let from = 1; from <= n; from += insertBatch) {
    const to = Math.min(n, from + insertBatch - 1);
    await query(`insert into ${quoteIdent(schema)}.tasks (name, payload) select $1, ${payloadSql} from generate_series($2::int, $3::int) g`, [name, from, to]);
  }
}

async function succeeded(schema) {
  const [r] = await query(`select count(*) filter (where state = 'succeeded')::int as ok, count(*)::int as total from ${quoteIdent(schema)}.tasks`);
  return r;
}

/** Tasks not final yet: a count over each partial index (queued, running), whatever else the table holds. */
async function notFinal(schema) {
  const q = quoteIdent(schema);
  const [r] = await query(
    `select (select count(*) from ${q}.tasks where state = 'queued') + (select count(*) from ${q}.tasks where state = 'running') as n`,
  );
  return Number(r.n);
}

/**
 * Completion is polled as for every peer (waitUntilDone): LISTENing for each batch of outcomes instead cost the
 * harness (its process and its backend) 0.1-0.15 ms of CPU per task in W2, on the cores the system measured needs.
 */
async function throughput(schema, name, n, payloadSql) {
  const t0 = performance.now();
  await insertTasks(schema, name, n, payloadSql);
  const t1 = await waitUntilDone(() => notFinal(schema), { total: n, t0, what: 'prefork to finish the tasks' });
  const counts = await succeeded(schema);
  if (counts.ok !== n) throw new Error(`${n - counts.ok} of ${n} tasks did not succeed`);
  return t1 - t0;
}

export async function w1({ w1: n }) {
  return withSupervisor('warn', async (_sup, schema) => {
    const ms = await throughput(schema, 'bench.echo', n, `jsonb_build_object('i', g)`);
    return { metrics: { 'W1 tasks/s': perSecond(n, ms) }, detail: await batching(schema) };
  });
}

export async function w2({ w2: n }) {
  return withSupervisor('warn', async (_sup, schema) => {
    await createRowsTable(schema);
    const ms = await throughput(schema, 'bench.insert', n, `jsonb_build_object('schema', '${schema}', 'i', g)`);
    const check = await checkRows(schema, n);
    return { metrics: { 'W2 tasks/s': perSecond(n, ms) }, checks: { W2: check } };
  });
}

/**
 * How many tasks each claim and each outcome batch carried: every claim and every settle is one transaction,
 * and rows written by one transaction share its now() (started_at, finished_at).
 */
async function batching(schema) {
  const [r] = await query(
    `select count(*)::int as tasks, count(distinct started_at)::int as claims, count(distinct finished_at)::int as settles
       from ${quoteIdent(schema)}.tasks`,
  );
  return { claims: r.claims, tasksPerClaim: Math.round((r.tasks / r.claims) * 10) / 10, settles: r.settles, tasksPerSettle: Math.round((r.tasks / r.settles) * 10) / 10 };
}

/** A client with a TaskWaiter on it, as `prefork send --wait` uses. */
async function waiterClient(defer, schema) {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'prefork bench sender' });
  client.on('error', () => {});
  await client.connect();
  defer('sender connection', () => client.end().catch(() => {}));
  const waiter = await TaskWaiter.listen(client, schema);
  return { client, waiter };
}

/**
 * The application's way to send a task and wait for it: `Client.run()`, which hands the task to the supervisor
 * on this host over its socket (the supervisor inserts it claimed and sends the outcome back once recorded).
 */
export async function w3({ w3: n }) {
  return withSupervisor('warn', async (_sup, schema, defer) => {
    const client = new Client({ connectionString: databaseUrl, schema });
    defer('client', () => client.close());
    for (let i = 0; i < 10; i++) await client.run('bench.echo', { warmup: i }, { timeoutMs: 30_000 });
    const samples = [];
    const seen = new Map();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const task = await client.run('bench.echo', { i }, { timeoutMs: 30_000 });
      samples.push(performance.now() - t0);
      seen.set(task.id, Date.now());
      if (task.status !== 'succeeded' || task.result?.i !== i) throw new Error(`task ${task.id} ended ${task.status} with ${JSON.stringify(task.result)}`);
    }
    return { metrics: latencyFigures(samples), samples: samples.length, detail: await latencyBreakdown(schema, seen) };
  });
}

/**
 * Where a W3 task's time goes, from the row's own timestamps (each the start of the transaction that wrote
 * it): insert → claimed, claimed → outcome recorded, recorded → seen by the sender. Medians in ms.
 */
async function latencyBreakdown(schema, seen) {
  const rows = await query(
    `select id::text, extract(epoch from started_at - created_at) * 1000 as claim_ms,
            extract(epoch from finished_at - started_at) * 1000 as run_ms,
            extract(epoch from finished_at) * 1000 as finished_epoch_ms
       from ${quoteIdent(schema)}.tasks where id = any($1::bigint[])`,
    [[...seen.keys()]],
  );
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const round = (x) => Math.round(x * 100) / 100;
  return {
    w3InsertToClaimMs: round(median(rows.map((r) => Number(r.claim_ms)))),
    w3ClaimToRecordedMs: round(median(rows.map((r) => Number(r.run_ms)))),
    w3RecordedToSeenMs: round(median(rows.map((r) => seen.get(r.id) - Number(r.finished_epoch_ms)))),
  };
}

/** W4a: SIGKILL of the worker running a task → that task's completion on another worker. */
async function crashRecovery(sup, schema, client, waiter) {
  const pidFile = join(tmpdir(), `prefork-bench-${process.pid}-${schema}.pid`);
  rmSync(pidFile, { force: true });
  try {
    const { id } = await addTask(client, schema, 'bench.crashOnce', { pidFile });
    const pid = await pollUntil(() => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')), { timeoutMs: 15_000, intervalMs: 5, what: 'the crash task to start' });
    process.kill(pid, 'SIGKILL');
    const t0 = performance.now();
    const { row, final } = await waiter.wait(id, { timeoutMs: 30_000 });
    const ms = performance.now() - t0;
    if (!final || row.state !== 'succeeded' || row.result?.attempt !== 2 || row.result?.pid === pid) {
      throw new Error(`crashed task ended ${row?.state} with ${JSON.stringify(row?.result)}`);
    }
    return ms;
  } finally {
    rmSync(pidFile, { force: true });
  }
}

/** W4b: a task passing its hard limit → its timed_out record, and a replacement worker ready. */
async function hardLimitRecovery(sup, schema, client, waiter) {
  const readyBefore = sup.events('worker_ready').length;
  const timeoutsBefore = sup.events('task_hard_timeout').length;
  const { id } = await addTask(client, schema, 'bench.spin', {});
  const limitLine = await sup.waitForEvent('task_hard_timeout', timeoutsBefore + 1, 15_000);
  const passedAt = Date.parse(limitLine.time);
  const { row, final } = await waiter.wait(id, { timeoutMs: 15_000 });
  const recordedAt = Date.now();
  if (!final || row.state !== 'timed_out') throw new Error(`the spinning task ended ${row?.state}`);
  const readyLine = await sup.waitForEvent('worker_ready', readyBefore + 1, 15_000);
  const replacedAt = Date.parse(readyLine.time);
  return { ms: Math.max(recordedAt, replacedAt) - passedAt, recordedMs: recordedAt - passedAt, replacedMs: replacedAt - passedAt };
}

export async function w4() {
  return withSupervisor('info', async (sup, schema, defer) => {
    const { client, waiter } = await waiterClient(defer, schema);
    const crashMs = await crashRecovery(sup, schema, client, waiter);
    // The crash forked a replacement: let it be ready before the next measurement.
    await sup.waitForEvent('worker_ready', 5, 15_000);
    const hard = await hardLimitRecovery(sup, schema, client, waiter);
    return {
      metrics: { 'W4a ms': crashMs, 'W4b ms': hard.ms },
      detail: { w4bRecordedMs: hard.recordedMs, w4bReplacedMs: hard.replacedMs },
    };
  });
}

/** `prefork start` → supervisor_ready, then resident memory of the primary and each worker after `idleMs` idle. */
export async function idle({ idleMs }) {
  return scope(async (defer) => {
    const schema = freshSchema('pf');
    dropLater(defer, schema);
    const sup = SupervisorProcess.start(defer, schema, { logLevel: 'info' });
    const line = await sup.ready();
    const startMs = line.seenAt - sup.spawnedAt;
    await delay(idleMs);
    // The primary's children are its workers and its guard (a /bin/sh that kills them should the primary die):
    // the guard's memory counts in the PSS of all processes, not in the per-worker figures.
    const children = childPids(sup.pid);
    const pids = children.filter((pid) => commandLine(pid).includes('worker/main.js'));
    const others = children.filter((pid) => !pids.includes(pid));
    const workers = pids.map((pid) => rssBytes(pid)).filter((r) => r !== null);
    const unique = pids.map((pid) => ussBytes(pid)).filter((r) => r !== null);
    if (workers.length !== 4) throw new Error(`expected 4 worker processes, found ${workers.length}`);
    return {
      metrics: {
        'start ms': startMs,
        'RSS primary MB': mb(rssBytes(sup.pid)),
        'RSS worker MB': mb(workers.reduce((a, b) => a + b, 0) / workers.length),
        'USS worker MB': mb(unique.reduce((a, b) => a + b, 0) / unique.length),
        'PSS total MB': mb(treePssBytes(sup.pid)),
      },
      detail: {
        workerRssMb: workers.map((w) => Math.round(mb(w) * 10) / 10),
        workerUssMb: unique.map((w) => Math.round(mb(w) * 10) / 10),
        otherChildrenRssMb: others.map((pid) => Math.round(mb(rssBytes(pid) ?? 0) * 10) / 10),
      },
    };
  });
}
