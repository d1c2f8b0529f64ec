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
    .option('--supervisor <id>', 'only this supervisor: its id or a prefix of it (see status)')
    .option('--timeout <ms>', 'give up waiting after this many milliseconds (exit 124)', integer('--timeout', 1, 2_147_483_647))
    .option('--no-wait', 'ask, but do not wait');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 reloaded, 1 a new worker could not start (the reload stopped; the old workers go on), 3 no
supervisor running, one went away before its reload finished, or the database unreachable, 124 --timeout passed.`,
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
      /** Supervisors whose reload ended (reloaded, or failed): not waited for any more. */
      const done = new Set<string>();
      /** Gone before their reload ended: stopped, killed (seen at once on this host), or silent past their lease. */
      const gone = new Set<string>();
      for (;;) {
        await delay(200);
        const live = new Map((await liveSupervisors(client, database.schema, supervisorDefaults.leaseMs)).map((s) => [s.id, s]));
        for (const [id, asked] of before) {
          if (done.has(id) || gone.has(id)) continue;
          const s = live.get(id);
          if (!s) {
            gone.add(id);
            continue;
          }
          const snap = s.snapshot as Snapshot;
          // A reload that ended after the ask, failed: this supervisor is done (its old workers go on).
          if (snap.lastReload && snap.lastReload.seq > asked.seq && snap.lastReload.outcome === 'failed' && !snap.reloading) {
            failed.set(id, snap.lastReload.error ?? 'unknown error');
            done.add(id);
            continue;
          }
          const workers = snap.workers ?? [];
          const reloading = snap.reloading || workers.some((w) => asked.pids.has(w.pid)) || workers.filter((w) => w.state === 'ready').length < (snap.workersWanted ?? 0);
          if (!reloading) done.add(id);
        }
        if (done.size + gone.size === before.size) break;
        if (Date.now() >= deadline) {
          process.stderr.write(`prefork: reload still running after ${flags.timeout} ms\n`);
          process.exitCode = exitCodes.timeout;
          return;
        }
      }
      for (const id of gone) process.stderr.write(`prefork: error: supervisor ${id} went away before its reload finished (it stopped, or its process exited)\n`);
      if (failed.size > 0) {
        for (const [id, error] of failed) process.stderr.write(`prefork: reload failed on supervisor ${id}: ${error}\n`);
        process.exitCode = exitCodes.taskFailed;
        return;
      }
      if (gone.size > 0) {
        process.exitCode = exitCodes.unavailable;
        return;
      }
      process.stderr.write('prefork: reloaded\n');
    } finally {
      await client.end().catch(() => {});
    }
  });
}
