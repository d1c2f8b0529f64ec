import { Command } from 'commander';
import { PreforkError } from '../../errors.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import type { WorkerRef } from '../inspect/inspect-worker.js';
import { taskIdProblem } from '../../queue/task-input.js';
import { addDatabaseOptions } from './common.js';

interface InspectFlags extends DatabaseFlags {
  json?: boolean;
  supervisor?: string;
}

type Target = { kind: 'task'; id: string } | { kind: 'worker'; ref: WorkerRef };

export function inspectCommand(): Command {
  const command = new Command('inspect')
    .description("show one task (every attempt, payload, result, where it runs) or one worker (its tasks and their database backends)")
    .usage('task <id> | worker <id|pid:N> | <task id> [options]')
    .argument('<what>', 'task, worker, or a task id')
    .argument('[id]', 'task id; worker id (as status shows it) or pid:N')
    .option('--json', 'print one JSON object')
    .option('--supervisor <id>', 'inspect worker: the supervisor (its id or a prefix of it) when several run');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 shown, 1 no such task or worker, 2 malformed id, 3 database unreachable or (worker) no supervisor running.

Examples:
  $ prefork inspect task 42          # or: prefork inspect 42
  $ prefork inspect worker 3
  $ prefork inspect worker pid:12345 --json`,
  );
  return command.action(async (what: string, id: string | undefined, flags: InspectFlags) => {
    const target = parseTarget(what, id);
    if (flags.supervisor !== undefined && target.kind === 'task') {
      throw new PreforkError('SUPERVISOR_WITH_TASK', '--supervisor is for inspect worker', { exitCode: exitCodes.usage });
    }
    const database = resolveDatabase(flags);
    // Loaded here, not at the top: `prefork start` imports every command's module.
    const [{ inspectTask, renderTask }, { inspectWorker, notFoundExitCode, renderWorker }] = await Promise.all([
      import('../inspect/inspect-task.js'),
      import('../inspect/inspect-worker.js'),
    ]);
    const client = await openDatabase(database, 'prefork inspect', { existing: true });
    try {
      if (target.kind === 'task') {
        const task = await inspectTask(client, database.schema, target.id, supervisorDefaults.leaseMs);
        if (!task) throw new PreforkError('NOT_FOUND', `no task ${target.id}`, { exitCode: notFoundExitCode });
        process.stdout.write(flags.json ? `${JSON.stringify(task)}\n` : renderTask(task));
      } else {
        const worker = await inspectWorker(client, database.schema, target.ref, flags.supervisor, supervisorDefaults.leaseMs);
        process.stdout.write(flags.json ? `${JSON.stringify(worker)}\n` : renderWorker(worker));
      }
    } finally {
      await client.end().catch(() => {});
    }
  });
}

export function parseTarget(what: string, id: string | undefined): Target {
  const usage = (message: string) => new PreforkError('BAD_TARGET', message, { exitCode: exitCodes.usage });
  // A bare number is meant as a task id: one too large is said to be, not taken for an unknown word.
  if (/^[1-9]\d*$/.test(what)) {
    if (id !== undefined) throw usage(`inspect ${what}: give only the task id (or: inspect task ${what})`);
    return parseTarget('task', what);
  }
  if (what === 'task') {
    if (id === undefined) throw usage('inspect task: give the task id, e.g. prefork inspect task 42');
    const problem = taskIdProblem(id);
    if (problem) throw usage(`invalid task id "${id}": ${problem}`);
    return { kind: 'task', id };
  }
  if (what === 'worker') {
    if (id === undefined) throw usage('inspect worker: give the worker id or pid:N, e.g. prefork inspect worker 3');
    const pid = /^pid:([1-9]\d{0,9})$/.exec(id);
    if (pid) return { kind: 'worker', ref: { pid: Number(pid[1]) } };
    if (/^[1-9]\d{0,9}$/.test(id)) return { kind: 'worker', ref: { id: Number(id) } };
    throw usage(`invalid worker "${id}": give the worker id (a positive whole number, as status shows it) or pid:N`);
  }
  throw usage(`inspect what? "${what}" is neither task, worker nor a task id`);
}
