import { Command } from 'commander';
import { openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { integer } from '../parse.js';
import { addDatabaseOptions } from './common.js';
import { sendControl } from './control.js';

export function scaleCommand(): Command {
  const command = new Command('scale')
    .description('set the number of worker processes of running supervisors (retired workers finish their tasks first)')
    .argument('<workers>', 'worker processes per supervisor', integer('workers', 1, 1024))
    .option('--supervisor <id>', 'only this supervisor: its id or a prefix of it (see status)');
  addDatabaseOptions(command);
  return command.action(async (workers: number, flags: DatabaseFlags & { supervisor?: string }) => {
    const database = resolveDatabase(flags);
    const client = await openDatabase(database, 'prefork scale', { existing: true });
    try {
      const targets = await sendControl(client, database.schema, flags.supervisor, { command: 'scale', workers });
      process.stderr.write(`prefork: asked ${targets.length} supervisor${targets.length === 1 ? '' : 's'} to run ${workers} worker${workers === 1 ? '' : 's'}\n`);
    } finally {
      await client.end().catch(() => {});
    }
  });
}
