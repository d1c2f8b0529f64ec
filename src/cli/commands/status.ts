import { Command } from 'commander';
import { PreforkError } from '../../errors.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { statusReport, type StatusReport } from '../../queue/status-report.js';
import { exitCodes } from '../exit-codes.js';
import { openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { integer } from '../parse.js';
import { addDatabaseOptions } from './common.js';

interface StatusFlags extends DatabaseFlags {
  json?: boolean;
  watch?: boolean;
  interval?: number;
}

export function statusCommand(): Command {
  const command = new Command('status')
    .description('show the running supervisors, their workers, and the queue by state')
    .option('--json', 'print one JSON object: { supervisors: [{ id, pid, host, state, workers: [...] }], queue: {...} }; with --watch, one per refresh')
    .option('-w, --watch', 'refresh in place until Ctrl-C: workers, current tasks, database connections, queue, throughput')
    .option('--interval <ms>', 'with --watch: milliseconds between refreshes (default 1000)', integer('--interval', 100, 3_600_000));
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
A supervisor's state is starting until its workers are ready (as /healthz says), then running, then stopping.
One killed on this host (SIGKILL, the OOM killer) is listed as exited until its lease runs out.
With --watch on a terminal the view is redrawn in place; when stdout is not a terminal a plain report is
printed per refresh, and with --json one JSON object per line. Ctrl-C (SIGINT) or SIGTERM ends it, exit 0.

Examples:
  $ prefork status
  $ prefork status --watch --interval 500
  $ prefork status --watch --json | jq -c '.throughput'`,
  );
  return command.action(async (flags: StatusFlags) => {
    if (flags.interval !== undefined && !flags.watch) {
      throw new PreforkError('INTERVAL_WITHOUT_WATCH', '--interval is for --watch', { exitCode: exitCodes.usage });
    }
    const database = resolveDatabase(flags);
    if (flags.watch) {
      // The live view's code loads only for --watch: `prefork start` imports every command's module.
      const { watchStatus } = await import('../watch/watch-status.js');
      await watchStatus(database, { intervalMs: flags.interval ?? 1_000, json: flags.json === true });
      return;
    }
    const client = await openDatabase(database, 'prefork status', { existing: true });
    try {
      const report = await statusReport(client, database.schema, supervisorDefaults.leaseMs);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : renderStatus(report));
    } finally {
      await client.end().catch(() => {});
    }
  });
}

export function renderStatus(report: StatusReport): string {
  const lines: string[] = [];
  if (report.supervisors.length === 0) lines.push('no supervisor is running (start one with: prefork start)');
  for (const s of report.exited) {
    lines.push(
      `supervisor ${s.id} pid ${s.pid} on ${s.host}: exited without stopping (last heard from at ${s.heartbeatAt}); a supervisor on this host gives its tasks back within seconds, one elsewhere once its lease runs out`,
    );
  }
  for (const s of report.supervisors) {
    const queues = s.queues ? `, queues ${s.queues.join(',')} only` : '';
    lines.push(`supervisor ${s.id} pid ${s.pid} on ${s.host}: ${s.state}, ${s.workers.length} worker${s.workers.length === 1 ? '' : 's'}${queues}, started ${s.startedAt}`);
    if (s.lastReload?.outcome === 'failed') lines.push(`  last reload failed at ${s.lastReload.finishedAt}: ${s.lastReload.error}`);
    const ready = s.workers.filter((w) => w.state === 'ready').length;
    if (s.startupFailure && s.workersWanted !== null && ready < s.workersWanted) {
      const f = s.startupFailure;
      lines.push(`  ${ready} of ${s.workersWanted} workers ready: workers fail to start (${f.failures} in a row, last at ${f.at}): ${f.message}`);
    }
    lines.push('  WORKER    PID  STATE      DONE  FAILED  RSS(MB)  LAG(ms)  CURRENT');
    for (const w of s.workers) {
      const current = w.current.map((c) => `${c.name}#${c.taskId} ${Math.round(c.runningMs / 100) / 10}s`).join(', ') || '-';
      lines.push(
        `  ${String(w.id).padStart(6)} ${String(w.pid).padStart(6)}  ${w.state.padEnd(9)} ${String(w.tasksDone).padStart(5)} ${String(w.failures).padStart(7)} ${w.rss === null ? '      -' : String(Math.round(w.rss / 1048576)).padStart(8)} ${w.loopLagMs === null ? '       -' : String(w.loopLagMs).padStart(8)}  ${current}`,
      );
    }
  }
  const q = report.queue;
  // `running` in the table counts the tasks supervisors claimed ahead too (held for a free worker): say how many
  // are on workers now, as the snapshots (up to a heartbeat old) tell.
  const onWorkers = report.supervisors.reduce((n, s) => n + s.workers.reduce((m, w) => m + w.current.length, 0), 0);
  const running = (n: number) => (report.supervisors.length > 0 && n > onWorkers ? `running ${n} (${onWorkers} on workers, ${n - onWorkers} claimed ahead)` : `running ${n}`);
  lines.push(`queue: ${Object.entries(q).map(([state, n]) => (state === 'running' ? running(n) : `${state} ${n}`)).join(', ')}`);
  for (const s of report.schedules) {
    const skipped =
      s.skippedInARow > 0
        ? `; ${s.skippedInARow} tick${s.skippedInARow === 1 ? '' : 's'} skipped since the run queued${s.lastQueuedAt ? ` for ${s.lastQueuedAt}` : ''}: it is not done (still queued or running)`
        : '';
    lines.push(`schedule ${s.name} (${s.cron}, ${s.timeZone}): next ${s.nextAt ?? 'never'}, last ${s.lastFiredAt ?? 'not yet'}${skipped}`);
  }
  for (const l of report.limits) {
    const parts = [l.maxRunning === null ? `running ${l.running}` : `running ${l.running} of ${l.maxRunning}`];
    if (l.rateLimit) parts.push(`started ${l.startedInWindow} of ${l.rateLimit.count} in the last ${l.rateLimit.intervalMs} ms`);
    lines.push(`limit ${l.name}: ${parts.join(', ')}, queued ${l.queued}`);
  }
  for (const p of report.paused) lines.push(`paused ${p.name} since ${p.pausedAt}${p.reason === null ? '' : `: ${p.reason}`} (prefork resume ${p.name})`);
  return `${lines.join('\n')}\n`;
}
