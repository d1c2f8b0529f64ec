import { setTimeout as delay } from 'node:timers/promises';
import { Command } from 'commander';
import type { LastReload } from '../../primary/supervisor.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { liveSupervisors } from '../../queue/supervisors.js';
import { openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import { integer } from '../parse.js';
import { addDatabaseOptions } from './common.js';
import { sendControl } from './control.js';

interface Snapshot {
  workers?: { pid: number; state: string }[];
  workersWanted?: number;
  reloading?: boolean;
  /** Absent from supervisors older than it. */
  lastReload?: LastReload | null;
}

export function reloadCommand(): Command {
  const command = new Command('reload')
    .description('rolling restart: replace every worker, one at a time, by a fresh process that loads the task module anew (as SIGHUP)')
    .option('--supervisor <id>', 'only this supervisor (see status)')
    .option('--timeout <ms>', 'give up waiting after this many milliseconds (exit 124)', integer('--timeout', 1, 2_147_483_647))
    .option('--no-wait', 'ask, but do not wait');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 reloaded, 1 a new worker could not start (the reload stopped; the old workers go on), 3 no
supervisor running or database unreachable, 124 --timeout passed.`,
  );
  return command.action(async (flags: DatabaseFlags & { supervisor?: string; timeout?: number; wait: boolean }) => {
    const database = resolveDatabase(flags);
    const client = await openDatabase(database, 'prefork reload', { existing: true });
    try {
      const targets = await sendControl(client, database.schema, flags.supervisor, { command: 'reload' });
      process.stderr.write(`prefork: asked ${targets.length} supervisor${targets.length === 1 ? '' : 's'} to reload\n`);
      if (!flags.wait) return;
      const before = new Map(
        targets.map((t) => {
          const snap = t.snapshot as Snapshot;
          return [t.id, { pids: new Set((snap.workers ?? []).map((w) => w.pid)), seq: snap.lastReload?.seq ?? 0 }];
        }),
      );
      const deadline = flags.timeout === undefined ? Infinity : Date.now() + flags.timeout;
      const failed = new Map<string, string>();
      for (;;) {
        await delay(200);
        const live = (await liveSupervisors(client, database.schema, supervisorDefaults.leaseMs)).filter((s) => before.has(s.id));
        const pending = live.filter((s) => {
          const snap = s.snapshot as Snapshot;
          const asked = before.get(s.id)!;
          // A reload that ended after the ask, failed: this supervisor is done (its old workers go on).
          if (snap.lastReload && snap.lastReload.seq > asked.seq && snap.lastReload.outcome === 'failed' && !snap.reloading) {
            failed.set(s.id, snap.lastReload.error ?? 'unknown error');
            return false;
          }
          const workers = snap.workers ?? [];
          return snap.reloading || workers.some((w) => asked.pids.has(w.pid)) || workers.filter((w) => w.state === 'ready').length < (snap.workersWanted ?? 0);
        });
        if (pending.length === 0) break;
        if (Date.now() >= deadline) {
          process.stderr.write(`prefork: reload still running after ${flags.timeout} ms\n`);
          process.exitCode = exitCodes.timeout;
          return;
        }
      }
      if (failed.size > 0) {
        for (const [id, error] of failed) process.stderr.write(`prefork: reload failed on supervisor ${id}: ${error}\n`);
        process.exitCode = exitCodes.taskFailed;
        return;
      }
      process.stderr.write('prefork: reloaded\n');
    } finally {
      await client.end().catch(() => {});
    }
  });
}
