/** Commands that ask running supervisors to do something, through a NOTIFY on the control channel. */
import { PreforkError } from '../../errors.js';
import type { ControlCommand } from '../../primary/control.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { notifyControl } from '../../queue/notify.js';
import { liveSupervisors, type SupervisorRow } from '../../queue/supervisors.js';
import type pg from 'pg';
import { exitCodes } from '../exit-codes.js';

export async function sendControl(
  client: pg.Client,
  schema: string,
  target: string | undefined,
  command: ControlCommand,
): Promise<SupervisorRow[]> {
  const targets = (await liveSupervisors(client, schema, supervisorDefaults.leaseMs)).filter((s) => !target || s.id === target);
  if (targets.length === 0) {
    throw new PreforkError('NO_SUPERVISOR', target ? `no running supervisor has id ${target}` : 'no supervisor is running on this database', {
      exitCode: exitCodes.unavailable,
    });
  }
  await notifyControl(client, schema, command, target);
  return targets;
}
