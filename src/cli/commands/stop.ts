import { setTimeout as delay } from 'node:timers/promises';
import { Command } from 'commander';
import { isProcessAlive } from '../../process-alive.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { liveSupervisors, sharesPids } from '../../queue/supervisors.js';
import { locateDatabase, openDatabase, resolveDatabase, unreachable, type DatabaseFlags } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import { integer } from '../parse.js';
import { addDatabaseOptions } from './common.js';
import { sendControl } from './control.js';

interface StopFlags extends DatabaseFlags {
  timeout?: number;
  wait: boolean;
  supervisor?: string;
}

export function stopCommand(): Command {
  const command = new Command('stop')
    .description('ask the running supervisors to stop gracefully and wait until they have')
    .option('--supervisor <id>', 'stop only this supervisor: its id or a prefix of it (see status)')
    .option('--timeout <ms>', 'give up waiting after this many milliseconds (exit 124)', integer('--timeout', 1, 2_147_483_647))
    .option('--no-wait', 'ask, but do not wait');
  addDatabaseOptions(command);
  return command.action(async (flags: StopFlags) => {
    const database = resolveDatabase(flags);
    const { url, state } = await locateDatabase(database);
    const client = await openDatabase({ ...database, url }, 'prefork stop', { existing: true });
    try {
      const leaseMs = supervisorDefaults.leaseMs;
      const targets = await sendControl(client, database.schema, flags.supervisor, { command: 'stop' });
      process.stderr.write(`prefork: asked ${targets.length} supervisor${targets.length === 1 ? '' : 's'} to stop\n`);
      if (!flags.wait) return;
      const deadline = flags.timeout === undefined ? Infinity : Date.now() + flags.timeout;
      const ids = new Set(targets.map((t) => t.id));
      for (;;) {
        let rows;
        try {
          rows = await liveSupervisors(client, database.schema, leaseMs);
        } catch (error) {
          // An embedded server stops right after its supervisor, ending this connection: the pids tell the rest.
          if (state && targets.every(sharesPids)) break;
          throw unreachable(error, url);
        }
        const live = rows.filter((s) => ids.has(s.id));
        if (live.length === 0) break;
        if (Date.now() >= deadline) {
          process.stderr.write(`prefork: ${live.length} supervisor${live.length === 1 ? ' is' : 's are'} still stopping after ${flags.timeout} ms\n`);
          process.exitCode = exitCodes.timeout;
          return;
        }
        await delay(100);
      }
      // The row says stopped once the workers are gone; on this host, also wait for the primary to exit (and
      // for its embedded server, which stops after it).
      const local = targets.filter(sharesPids).map((t) => t.pid);
      if (state) local.push(state.postgresPid);
      const exitBy = Math.min(deadline, Date.now() + 10_000);
      while (local.some(isProcessAlive) && Date.now() < exitBy) await delay(50);
      // Its lease ran out but the process lives on (stopped with SIGSTOP, or hung): not stopped, and said so.
      const alive = targets.filter((t) => sharesPids(t) && isProcessAlive(t.pid)).map((t) => t.pid);
      if (alive.length > 0) {
        process.stderr.write(
          `prefork: error: supervisor pid ${alive.join(', ')} stopped renewing its lease but has not exited: it may be hung (kill it to stop it)\n`,
        );
        process.exitCode = 1;
        return;
      }
      process.stderr.write('prefork: stopped\n');
    } finally {
      await client.end().catch(() => {});
    }
  });
}
