import { Command } from 'commander';
import { PreforkError } from '../../errors.js';
import { addTask } from '../../queue/add-task.js';
import { checkTaskName } from '../../queue/known-tasks.js';
import { TaskWaiter } from '../../queue/task-waiter.js';
import { toTaskView } from '../../queue/task-view.js';
import { redactSecrets } from '../../db/connection-string.js';
import { locateDatabase, openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import { integer, parsePayload } from '../parse.js';
import { addDatabaseOptions } from './common.js';

interface SendFlags extends DatabaseFlags {
  wait?: boolean;
  timeout?: number;
  json?: boolean;
  maxAttempts?: number;
  priority?: number;
  delay?: number;
  queue?: string;
  key?: string;
  file?: string;
  skipInvalid?: boolean;
  batchSize?: number;
}

export function sendCommand(): Command {
  const command = new Command('send')
    .description('queue a task (or, with --file, many); with --wait, wait for it and print its result')
    .usage('<task> [payload] [options] | --file <path> [options]')
    .argument('[task]', 'task name, e.g. report.build')
    .argument('[payload]', 'JSON payload, or - to read it from stdin', '{}')
    .option('--wait', 'wait until the task finishes and print its result')
    .option('--timeout <ms>', 'with --wait: give up after this many milliseconds (exit 124)', integer('--timeout', 1, 2_147_483_647))
    .option('--json', 'print JSON: the id, or with --wait the whole task (id, task, status, result, error, attempts, workerPid, …)')
    .option('--max-attempts <n>', 'attempts before the task fails for good', integer('--max-attempts', 1, 1000))
    .option('--priority <n>', 'higher runs first (0 to 1000)', integer('--priority', 0, 1000))
    .option('--delay <ms>', 'do not run before this many milliseconds from now', integer('--delay', 0, 2_147_483_647))
    .option('--queue <name>', 'named queue', 'default')
    .option('--key <key>', 'unique key: while a task with this key is queued or running, return its id instead')
    .option('--file <path>', 'send one task per line: {"task": "...", "payload": {...}, "options": {priority, delayMs, queue, maxAttempts}} (- reads stdin)')
    .option('--skip-invalid', 'with --file: skip (and report) bad lines instead of sending nothing')
    .option('--batch-size <n>', 'with --file: tasks per insert statement (default 1000)', integer('--batch-size', 1, 50_000));
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 sent (or succeeded), 1 the task failed, 2 bad input or unknown task, 3 database unreachable, 124 --timeout passed.
With --file: 1 any task failed, timed out or was cancelled; 2 a bad line (without --skip-invalid: nothing sent);
130 Ctrl-C (the batches already inserted stay). --priority, --delay, --queue and --max-attempts are the
defaults of lines that do not set them. The progress goes to stderr, the summary to stdout.

Examples:
  $ prefork send prefork.echo '{"hi":1}' --wait
  $ prefork send report.build '{"userId":7}' --wait --timeout 30000 --json
  $ echo '{"userId":7}' | prefork send report.build -
  $ prefork send --file tasks.ndjson --skip-invalid --wait --json`,
  );
  return command.action(async (name: string | undefined, payloadText: string, flags: SendFlags) => {
    if (flags.file !== undefined) return sendFileAction(name, flags);
    if (flags.skipInvalid || flags.batchSize !== undefined) {
      throw new PreforkError('FILE_OPTION', `${flags.skipInvalid ? '--skip-invalid' : '--batch-size'} is for --file`, { exitCode: exitCodes.usage });
    }
    if (name === undefined) throw new PreforkError('MISSING_TASK', "missing required argument 'task'", { exitCode: exitCodes.usage });
    const payload = parsePayload(payloadText === '-' ? await readStdin() : payloadText);
    const database = resolveDatabase(flags);
    const { url, state } = await locateDatabase(database);
    const client = await openDatabase({ ...database, url }, 'prefork send');
    try {
      const check = await checkTaskName(client, database.schema, name);
      if (!check.ok) {
        throw new PreforkError('UNKNOWN_TASK', `unknown task "${name}": the supervisors know ${check.known.join(', ')}`, { exitCode: exitCodes.usage });
      }
      const waiter = flags.wait ? await TaskWaiter.listen(client, database.schema) : null;
      const added = await addTask(client, database.schema, name, payload, {
        maxAttempts: flags.maxAttempts,
        priority: flags.priority,
        delayMs: flags.delay,
        queue: flags.queue,
        key: flags.key,
      });
      if (!waiter) {
        process.stdout.write(flags.json ? `${JSON.stringify({ id: added.id, task: name, deduplicated: added.deduplicated })}\n` : `${added.id}\n`);
        return;
      }
      // A task this command added (not one its key matched) cannot have finished before the LISTEN.
      const { row, final } = await waiter.wait(added.id, { timeoutMs: flags.timeout, added: !added.deduplicated }).catch((error: unknown) => {
        // With the embedded PostgreSQL, the database goes away when its supervisor stops.
        const why = state ? ' (the supervisor running the embedded PostgreSQL stopped?)' : '';
        const message = redactSecrets((error as Error)?.message ?? String(error), url);
        throw new PreforkError('DATABASE_LOST', `lost the database while waiting for task ${added.id}${why}: ${message}`, { cause: error, exitCode: exitCodes.unavailable });
      });
      if (!row) throw new PreforkError('TASK_GONE', `task ${added.id} disappeared from the queue`, { exitCode: exitCodes.taskFailed });
      const view = toTaskView(row);
      if (flags.json) process.stdout.write(`${JSON.stringify(view)}\n`);
      if (!final) {
        process.stderr.write(`prefork: task ${row.id} is still ${row.state} after ${flags.timeout} ms\n`);
        process.exitCode = exitCodes.timeout;
        return;
      }
      if (row.state === 'succeeded') {
        if (!flags.json) process.stdout.write(`${JSON.stringify(row.result)}\n`);
        return;
      }
      const error = view.error;
      const attempts = `${row.attempts} attempt${row.attempts === 1 ? '' : 's'}`;
      process.stderr.write(`prefork: task ${row.id} (${row.name}) ${row.state.replace('_', ' ')} after ${attempts}: ${error ? `${error.name}: ${error.message}` : 'no error recorded'}\n`);
      process.exitCode = exitCodes.taskFailed;
    } finally {
      await client.end().catch(() => {});
    }
  });
}

async function sendFileAction(name: string | undefined, flags: SendFlags): Promise<void> {
  if (name !== undefined) {
    throw new PreforkError('FILE_WITH_TASK', '--file takes the tasks from the file: give no task name or payload', { exitCode: exitCodes.usage });
  }
  if (flags.key !== undefined) {
    throw new PreforkError('FILE_WITH_KEY', '--key is not supported with --file (send tasks with a unique key one by one)', { exitCode: exitCodes.usage });
  }
  if (flags.timeout !== undefined && !flags.wait) throw new PreforkError('TIMEOUT_WITHOUT_WAIT', '--timeout is for --wait', { exitCode: exitCodes.usage });
  // Loaded here, not at the top: `prefork start` imports every command's module.
  const { sendFile } = await import('./send-file.js');
  return sendFile(resolveDatabase(flags), {
    file: flags.file!,
    defaults: { priority: flags.priority, delayMs: flags.delay, queue: flags.queue, maxAttempts: flags.maxAttempts },
    skipInvalid: flags.skipInvalid === true,
    batchSize: flags.batchSize ?? 1_000,
    wait: flags.wait === true,
    timeoutMs: flags.timeout,
    json: flags.json === true,
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
