/**
 * `prefork pause` and `prefork resume`: stop every supervisor on the database from starting tasks of some names
 * (the LLM provider is down, a bug was found in a task), and let them go on again.
 */
import { Command } from 'commander';
import { pauseTasks, resumeTasks, type PauseOutcome, type ResumeOutcome } from '../../queue/paused-tasks.js';
import { assertTaskName } from '../../queue/task-input.js';
import { checkTaskName } from '../../queue/known-tasks.js';
import { openDatabase, resolveDatabase, unservedSchemaWarning, type DatabaseFlags } from '../database.js';
import { plural } from '../format.js';
import { nonEmpty } from '../parse.js';
import { addDatabaseOptions } from './common.js';

interface PauseFlags extends DatabaseFlags {
  reason?: string;
  json?: boolean;
}

const pauseWords: Record<PauseOutcome, string> = { paused: 'paused', already_paused: 'was paused already' };
const resumeWords: Record<ResumeOutcome, string> = { resumed: 'resumed', not_paused: 'was not paused' };

export function pauseCommand(): Command {
  const command = new Command('pause')
    .description('stop starting tasks of these names, on every supervisor: they wait queued (running ones finish) until resumed')
    .argument('<tasks...>', 'task names')
    .option('--reason <text>', 'why, shown by status', nonEmpty('--reason'))
    .option('--json', 'print one JSON object: { results: [{ name, outcome, queued }] }, outcome paused or already_paused');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 done (paused now or already; a name no supervisor offers, or a schema no supervisor ever ran on, is
paused with a warning), 2 malformed task name, 3 database unreachable.

Examples:
  $ prefork pause roadmap.generate --reason "LLM provider down"
  $ prefork resume roadmap.generate`,
  );
  return command.action(async (names: string[], flags: PauseFlags) => {
    const results = await onNames(names, flags, 'pause', (client, schema, checked) => pauseTasks(client, schema, checked, flags.reason ?? null));
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ results })}\n`
        : results.map((r) => `${r.name}: ${pauseWords[r.outcome]}, ${plural(r.queued, 'task')} queued\n`).join(''),
    );
  });
}

export function resumeCommand(): Command {
  const command = new Command('resume')
    .description('start tasks of these names again, on every supervisor (after prefork pause)')
    .argument('<tasks...>', 'task names')
    .option('--json', 'print one JSON object: { results: [{ name, outcome, queued }] }, outcome resumed or not_paused');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 done (resumed now, or was not paused), 2 malformed task name, 3 database unreachable or no queue in
the schema.

Example:
  $ prefork resume roadmap.generate`,
  );
  return command.action(async (names: string[], flags: PauseFlags) => {
    const results = await onNames(names, flags, 'resume', (client, schema, checked) => resumeTasks(client, schema, checked));
    process.stdout.write(
      flags.json ? `${JSON.stringify({ results })}\n` : results.map((r) => `${r.name}: ${resumeWords[r.outcome]}, ${plural(r.queued, 'task')} queued\n`).join(''),
    );
  });
}

async function onNames<R>(
  names: string[],
  flags: DatabaseFlags,
  command: 'pause' | 'resume',
  act: (client: Awaited<ReturnType<typeof openDatabase>>, schema: string, names: string[]) => Promise<R>,
): Promise<R> {
  const checked = [...new Set(names)];
  for (const name of checked) assertTaskName(name);
  const database = resolveDatabase(flags);
  const pausing = command === 'pause';
  // A pause may come ahead of the first deploy, so it makes the schema; a resume has nothing to do in one that
  // holds no queue (a typo in --schema): it says so, exit 3, as status does.
  const client = await openDatabase(database, `prefork ${command}`, { existing: !pausing });
  try {
    // A typo pauses nothing that runs: say so (paused anyway, as a name may be paused ahead of its deploy).
    const { known } = await checkTaskName(client, database.schema, '');
    if (pausing && known.length === 0) process.stderr.write(unservedSchemaWarning(database.schema, 'paused'));
    const unknown = pausing && known.length > 0 ? checked.filter((n) => !known.includes(n)) : [];
    for (const name of unknown) {
      process.stderr.write(`prefork: warning: no supervisor has offered a task named "${name}" on this database (they know ${known.filter((k) => !k.startsWith('prefork.')).join(', ') || 'only the built-ins'})\n`);
    }
    return await act(client, database.schema, checked);
  } finally {
    await client.end().catch(() => {});
  }
}
