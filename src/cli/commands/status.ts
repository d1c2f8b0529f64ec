import { Command } from 'commander';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { statusReport, type StatusReport } from '../../queue/status-report.js';
import { openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { addDatabaseOptions } from './common.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .description('show the running supervisors, their workers, and the queue by state')
    .option('--json', 'print one JSON object: { supervisors: [{ id, pid, host, state, workers: [...] }], queue: {...} }');
  addDatabaseOptions(command);
  return command.action(async (flags: DatabaseFlags & { json?: boolean }) => {
    const database = resolveDatabase(flags);
    const client = await openDatabase(database, 'prefork status');
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
  for (const s of report.supervisors) {
    lines.push(`supervisor ${s.id} pid ${s.pid} on ${s.host}: ${s.state}, ${s.workers.length} worker${s.workers.length === 1 ? '' : 's'}, started ${s.startedAt}`);
    lines.push('  WORKER    PID  STATE      DONE  FAILED  RSS(MB)  LAG(ms)  CURRENT');
    for (const w of s.workers) {
      const current = w.current.map((c) => `${c.name}#${c.taskId} ${Math.round(c.runningMs / 100) / 10}s`).join(', ') || '-';
      lines.push(
        `  ${String(w.id).padStart(6)} ${String(w.pid).padStart(6)}  ${w.state.padEnd(9)} ${String(w.tasksDone).padStart(5)} ${String(w.failures).padStart(7)} ${w.rss === null ? '      -' : String(Math.round(w.rss / 1048576)).padStart(8)} ${w.loopLagMs === null ? '       -' : String(w.loopLagMs).padStart(8)}  ${current}`,
      );
    }
  }
  const q = report.queue;
  lines.push(`queue: ${Object.entries(q).map(([state, n]) => `${state} ${n}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
