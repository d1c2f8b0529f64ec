// prefork benchmark: `npm run bench` (builds, then runs this file).
//
//   npm run bench                      full run: 3 runs of each workload, median with min–max (about 10 min)
//   npm run bench -- --quick           smoke check: 1 run, smaller counts (under 2 min)
//   npm run bench -- --runs 5          more runs
//   npm run bench -- --only prefork,raw,graphile,pgboss,bullmq
//   npm run bench -- --workloads W1,W2,W3,W4,idle
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) is the PostgreSQL used by everything; BullMQ
// uses the Redis at 127.0.0.1:6379 (started if down). BENCH_PRIMARY_NODE_ARGS are node flags for the `prefork
// start` subprocesses (and so their workers), e.g. "--cpu-prof --cpu-prof-dir=bench/results/prof".
//
// Workloads (4 worker processes, or concurrency 4 for the peers; each run on a fresh schema / queue):
//   W1   no-op throughput: 20,000 tasks that return their input, inserted in bulk; tasks/s from the first
//        insert to the last completion recorded in the database (every system's completion polled every 20 ms).
//   W2   connection-per-task throughput: 2,000 tasks, each opening its own connection (prefork: ctx.db),
//        inserting one row and closing it; the rows are counted afterwards (nothing lost or doubled).
//   W3   idle latency: 300 tasks sent one at a time, each awaited before the next, the way each system's
//        client does it (prefork: Client.run(), over the supervisor's socket; graphile-worker: LISTEN; BullMQ:
//        QueueEvents); p50 and p99 in ms from send to the result seen by the sender. pg-boss polls (0.5 s),
//        so it gets 30 samples (6 with --quick).
//   W4   recovery: (a) SIGKILL of the worker running a task → that task done on another worker (its second
//        attempt returns at once); (b) a busy task passing its 500 ms hard limit → its timed_out record and
//        the replacement worker's worker_ready line (the later of the two).
//   idle `prefork start` → supervisor_ready, then after 30 s idle (0.5 s with --quick), when V8 has given back
//        the young generation start-up grew: VmRSS of the primary and of each worker, each worker's USS (its
//        private pages: what its exit would free), and the PSS of the whole process tree (shared pages counted
//        once), comparable across one-process peers.
// Baselines: raw node:cluster IPC with the same 4 workers (W1 with one message in flight per worker, W3 one at
// a time), and raw connect + insert + end from 4 processes over TCP and the Unix socket (W2).
// Peers: graphile-worker 0.17 (defaults, and its batching options), pg-boss 10, BullMQ 5 sandboxed.
//
// Progress goes to stderr, the report to stdout, and the same as JSON to bench/results/<timestamp>.json.
// Exits non-zero only when the harness itself failed (a workload could not be measured), never on a number.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { allWorkloads, parseArgs, usage, UsageError } from './lib/args.js';
import { cleanupAll, handleSignals, isInterrupted } from './lib/cleanup.js';
import { databaseUrl, dropStaleSchemas, query } from './lib/db.js';
import { progress } from './lib/progress.js';
import { computeRatios, formatNumber, metrics, renderReport, summarizeResults, writeJson } from './report.js';
import { loadSystems } from './systems.js';

function version(pkg) {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;
  } catch {
    return null;
  }
}

function redact(url) {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: error: ${error.message}\n${usage}\n`);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  handleSignals();
  const startedAt = new Date().toISOString();
  const { sizes, runs } = options;
  progress(`${options.quick ? 'quick' : 'full'} run: ${runs} run(s); W1 ${sizes.w1}, W2 ${sizes.w2}, W3 ${sizes.w3} (polling peers ${sizes.w3Polling}); database ${redact(databaseUrl)}`);

  const [{ server_version: pgVersion }] = await query('show server_version');
  const stale = await dropStaleSchemas();
  if (stale.length > 0) progress(`dropped ${stale.length} schema(s) left by an earlier, killed benchmark`);

  const { systems, skipped } = await loadSystems(options.only);
  for (const s of skipped) progress(`skipping ${s.label}: ${s.reason}`);

  const results = {};
  const checks = [];
  const errors = [];
  const details = [];
  const workloadsOf = (s) => allWorkloads.filter((w) => options.workloads.includes(w) && s.workloads[w]);
  for (const s of systems) {
    results[s.id] = {};
    for (const [key, reason] of Object.entries(s.na ?? {})) {
      const m = metrics.find((x) => x.key === key);
      if (options.workloads.includes(m.workload)) results[s.id][key] = { na: reason };
    }
  }

  // Runs outermost: a burst of load from elsewhere on the machine hits one run of several systems, not all
  // runs of one, and the median discards it.
  for (let run = 1; run <= runs && !isInterrupted(); run++) {
    for (const s of systems) {
      for (const w of workloadsOf(s)) {
        if (isInterrupted()) break;
        const tag = `${s.label} ${w} run ${run}/${runs}`;
        progress(`${tag} …`);
        const t0 = performance.now();
        try {
          const r = await s.workloads[w](sizes);
          for (const [key, value] of Object.entries(r.metrics)) {
            if (value === null || value === undefined) continue;
            results[s.id][key] ??= { values: [] };
            results[s.id][key].values ??= [];
            results[s.id][key].values.push(value);
          }
          for (const c of Object.values(r.checks ?? {})) checks.push({ system: s.id, run, ...c });
          if (r.detail || r.samples) details.push({ system: s.id, workload: w, run, samples: r.samples, ...r.detail });
          const shown = Object.entries(r.metrics).map(([k, v]) => `${k} ${formatNumber(v)}`).join(', ');
          const bad = Object.values(r.checks ?? {}).filter((c) => !c.ok);
          progress(`${tag}: ${shown}${bad.length ? `  CHECK FAILED: ${JSON.stringify(bad)}` : ''} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        } catch (error) {
          if (isInterrupted()) break;
          const message = (error?.message ?? String(error)).split('\n')[0];
          errors.push({ system: s.id, workload: w, run, message });
          progress(`${tag}: ERROR ${message}`);
          for (const m of metrics.filter((x) => x.workload === w)) results[s.id][m.key] ??= { error: message };
        }
      }
    }
  }
  if (isInterrupted()) return 130;

  summarizeResults(results);
  const ratios = computeRatios(results, systems);
  const notes = [
    `${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown'}), load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}: figures vary ±10–30 % from run to run`,
    `PostgreSQL ${pgVersion}; Node ${process.version}`,
    `memory read after ${sizes.idleMs / 1000} s idle${sizes.idleMs < 30_000 ? ' (V8 gives back the young generation start-up grew, ≈10 MB a process, only 8-20 s into idleness)' : ''}`,
    ...systems.filter((s) => s.config).map((s) => `${s.label}: ${s.config}`),
  ];
  const report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    options: { quick: options.quick, runs, only: options.only, workloads: options.workloads },
    sizes,
    environment: {
      node: process.version,
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? null,
      loadavgAtEnd: loadavg(),
      postgres: pgVersion,
      database: redact(databaseUrl),
    },
    versions: {
      prefork: version('..') ?? JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version,
      'graphile-worker': version('graphile-worker'),
      'pg-boss': version('pg-boss'),
      bullmq: version('bullmq'),
    },
    systems: systems.map((s) => ({ id: s.id, label: s.label, config: s.config ?? null, peer: Boolean(s.peer) })),
    skipped,
    results,
    ratios,
    checks,
    errors,
    details,
  };
  const text = renderReport({ results, systems, ratios, runs, skipped, checks, errors, notes });
  process.stdout.write(`\n${text}\n`);
  const file = writeJson(report);
  progress(`results written to ${file}`);
  return errors.length > 0 ? 1 : 0;
}

let code;
try {
  code = await main();
} catch (error) {
  progress(`harness error: ${error?.stack ?? error}`);
  code = 1;
} finally {
  await cleanupAll();
}
process.exit(code);
