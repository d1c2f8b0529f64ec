/** Commands that ask running supervisors to do something, through a NOTIFY on the control channel. */
import { PreforkError } from '../../errors.js';
import type { ControlCommand } from '../../primary/control.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { notifyControl } from '../../queue/notify.js';
import { leasedSupervisors, type SupervisorRow } from '../../queue/supervisors.js';
import type pg from 'pg';
import { exitCodes } from '../exit-codes.js';

export async function sendControl(
  client: pg.Client,
  schema: string,
  target: string | undefined,
  command: ControlCommand,
): Promise<SupervisorRow[]> {
  const { live, exited } = await leasedSupervisors(client, schema, supervisorDefaults.leaseMs);
  // An id or a prefix of one (as `inspect worker --supervisor` takes it): the first characters `status` shows.
  const matches = (s: SupervisorRow) => !target || s.id.startsWith(target.toLowerCase());
  const targets = live.filter(matches);
  if (target && targets.length > 1) {
    throw new PreforkError('AMBIGUOUS_SUPERVISOR', `--supervisor ${target} matches ${targets.length} running supervisors: give more of the id`, {
      exitCode: exitCodes.usage,
    });
  }
  if (targets.length === 0) {
    // One killed on this host (SIGKILL, the OOM killer) holds its lease a while yet: say what became of it.
    const gone = exited.filter(matches).map((s) => `supervisor ${s.id} (pid ${s.pid}) has exited without stopping`);
    const none = target ? `no running supervisor has id ${target}` : 'no supervisor is running on this database';
    throw new PreforkError('NO_SUPERVISOR', gone.length > 0 ? `${none}: ${gone.join('; ')}` : none, { exitCode: exitCodes.unavailable });
  }
  await notifyControl(client, schema, command, target && targets[0]!.id);
  return targets;
}
