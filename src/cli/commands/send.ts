import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { DirectChannel, runDirect } from '../../client/direct-channel.js';
import { PreforkError } from '../../errors.js';
import { addSubmitted } from '../../queue/add-submitted.js';
import { addTask } from '../../queue/add-task.js';
import { checkNewTask } from '../../queue/task-input.js';
import { getTaskNameAndState, getTaskSummary } from '../../queue/read-tasks.js';
import { checkTaskName } from '../../queue/known-tasks.js';
import { pausedTasks } from '../../queue/paused-tasks.js';
import { liveSupervisors, type SupervisorRow } from '../../queue/supervisors.js';
import { snapshotQueues } from '../../queue/watch-report.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { TaskWaiter } from '../../queue/task-waiter.js';
import { toTaskView, type TaskView } from '../../queue/task-view.js';
import { redactSecrets } from '../../db/connection-string.js';
import { locateDatabase, openDatabase, resolveDatabase, unservedSchemaWarning, type DatabaseFlags } from '../database.js';
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
    .option('--json', 'print JSON: { id, task, deduplicated }, or with --wait the whole task (id, task, status, result, error, attempts, workerPid, …)')
    .option('--max-attempts <n>', 'attempts before the task fails for good', integer('--max-attempts', 1, 1_000_000))
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
Exit codes: 0 sent (or succeeded), 1 the task failed, 2 bad input or unknown task, 3 database unreachable, 124 --timeout passed,
130 Ctrl-C while --wait waits (the task goes on; its id is printed). A schema no supervisor ever ran on: a warning.
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
    if (flags.timeout !== undefined && !flags.wait) throw new PreforkError('TIMEOUT_WITHOUT_WAIT', '--timeout is for --wait', { exitCode: exitCodes.usage });
    const payload = parsePayload(payloadText === '-' ? await readStdin() : payloadText);
    // Refused here, before anything is sent, when the database could not store them.
    checkNewTask(name, payload);
    const database = resolveDatabase(flags);
    const { url, state } = await locateDatabase(database);
    const client = await openDatabase({ ...database, url }, 'prefork send');
    try {
      const check = await checkTaskName(client, database.schema, name);
      if (!check.ok) {
        throw new PreforkError('UNKNOWN_TASK', `unknown task "${name}": the supervisors know ${check.known.join(', ')}`, { exitCode: exitCodes.usage });
      }
      // Said once the task is in (a refusal of the send, a key too long say, comes without it).
      let warning = unservedWarning(database.schema, name, flags.queue ?? 'default', check.known, await liveSupervisors(client, database.schema, supervisorDefaults.leaseMs));
      const warn = () => {
        if (warning) process.stderr.write(warning);
        warning = null;
      };
      const options = { maxAttempts: flags.maxAttempts, priority: flags.priority, queue: flags.queue, key: flags.key };
      if (!flags.wait) {
        const added = await addTask(client, database.schema, name, payload, { ...options, delayMs: flags.delay });
        warn();
        // A deduplicated send names the task that holds the key, which may be one of another name.
        const holder = added.deduplicated ? await getTaskNameAndState(client, database.schema, added.id) : null;
        const task = holder?.name ?? name;
        if (added.deduplicated && !flags.json) {
          const of = task !== name ? ` (a ${task} task)` : '';
          process.stderr.write(`prefork: task ${added.id}${of} has key ${JSON.stringify(flags.key)} and is queued or running: not sent again\n`);
        }
        process.stdout.write(flags.json ? `${JSON.stringify({ id: added.id, task, deduplicated: added.deduplicated })}\n` : `${added.id}\n`);
        return;
      }
      // Ctrl-C while waiting: the task goes on; say which one, so it can be found.
      let sentId: string | undefined;
      const onInterrupt = () => {
        process.stderr.write(
          sentId === undefined
            ? `prefork: interrupted before the task was confirmed; if it was queued it goes on (prefork tasks --task ${name})\n`
            : `prefork: interrupted; task ${sentId} goes on (prefork inspect task ${sentId})\n`,
        );
        process.exit(exitCodes.forced);
      };
      process.once('SIGINT', onInterrupt);
      const deadline = flags.timeout === undefined ? undefined : Date.now() + flags.timeout;
      const left = () => (deadline === undefined ? undefined : Math.max(0, deadline - Date.now()));
      // A supervisor on this machine takes the task over its socket and sends the outcome back.
      let id: string | undefined;
      let view: TaskView | null = null;
      const direct = flags.delay ? null : await DirectChannel.open(client, database.schema, name).catch(() => null);
      const submission = randomUUID();
      if (direct) {
        try {
          ({ id, view } = await runDirect(direct, { submission, name, payload, ...options }, {
            timeoutMs: left(),
            read: (taskId) => getTaskSummary(client, database.schema, taskId),
            onAccepted: (taskId) => {
              sentId = taskId;
              warn();
            },
          }));
        } catch (error) {
          const code = (error as PreforkError).code ?? 'SUBMIT_FAILED';
          throw new PreforkError(code, (error as Error).message, { cause: error, exitCode: code === 'BAD_REQUEST' ? exitCodes.usage : exitCodes.unavailable });
        } finally {
          direct.close();
        }
      }
      let final = view !== null;
      if (!view) {
        const waiter = await TaskWaiter.listen(client, database.schema);
        let added = false;
        if (id === undefined) {
          // After a failed direct attempt, under its submission id: never a second task.
          const inserted = direct
            ? await addSubmitted(client, database.schema, submission, name, payload, options)
            : await addTask(client, database.schema, name, payload, { ...options, delayMs: flags.delay });
          id = inserted.id;
          sentId = id;
          warn();
          // A task this command added (not one its key matched) cannot have finished before the LISTEN.
          added = !direct && !inserted.deduplicated;
        }
        const taskId = id;
        if (flags.key !== undefined && !added) {
          // Its outcome would be printed as this task's (as Client.run() refuses it).
          const holder = await getTaskNameAndState(client, database.schema, taskId);
          if (holder && holder.name !== name) {
            throw new PreforkError('KEY_IN_USE', `the key ${JSON.stringify(flags.key)} is held by task ${taskId}, a ${holder.state} ${holder.name} task: not sent, and not waited for`, { exitCode: exitCodes.usage });
          }
        }
        const waited = await waiter.wait(taskId, { timeoutMs: left(), added }).catch((error: unknown) => {
          // With the embedded PostgreSQL, the database goes away when its supervisor stops.
          const why = state ? ' (the supervisor running the embedded PostgreSQL stopped?)' : '';
          const message = redactSecrets((error as Error)?.message ?? String(error), url);
          throw new PreforkError('DATABASE_LOST', `lost the database while waiting for task ${taskId}${why}: ${message}`, { cause: error, exitCode: exitCodes.unavailable });
        });
        if (!waited.row) throw new PreforkError('TASK_GONE', `task ${taskId} disappeared from the queue`, { exitCode: exitCodes.taskFailed });
        view = toTaskView(waited.row);
        final = waited.final;
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(view)}\n`);
      if (!final) {
        // A queued task of a paused name waits for `resume`: say so.
        const paused = view.status === 'queued' ? (await pausedTasks(client, database.schema).catch(() => [])).find((p) => p.name === view.task) : undefined;
        const why = paused ? ` (${paused.name} is paused${paused.reason ? `: ${paused.reason}` : ''}; prefork resume ${paused.name})` : '';
        process.stderr.write(`prefork: task ${view.id} is still ${view.status} after ${flags.timeout} ms${why}\n`);
        process.exitCode = exitCodes.timeout;
        return;
      }
      if (view.status === 'succeeded') {
        if (!flags.json) process.stdout.write(`${JSON.stringify(view.result)}\n`);
        return;
      }
      const error = view.error;
      const attempts = `${view.attempts} attempt${view.attempts === 1 ? '' : 's'}`;
      process.stderr.write(`prefork: task ${view.id} (${view.task}) ${view.status.replace('_', ' ')} after ${attempts}: ${error ? `${error.name}: ${error.message}` : 'no error recorded'}\n`);
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

/**
 * Why the task may wait, when it may: nobody ever served the schema (a --schema typo?), nobody serves it now, or
 * those running do not offer the name (a reload dropped it, say). Sent anyway. A supervisor on its way (its
 * workers loading) tells what it offers once ready: nothing is said meanwhile.
 */
function unservedWarning(schema: string, name: string, queue: string, known: readonly string[], live: readonly SupervisorRow[]): string | null {
  if (live.some((s) => s.state === 'starting')) return null;
  if (known.length === 0) return unservedSchemaWarning(schema, 'the task waits queued');
  const running = live.filter((s) => s.state === 'running');
  if (running.length === 0) return `prefork: warning: no supervisor is running on schema "${schema}" now; the task waits queued until one starts\n`;
  const offering = running.filter((s) => s.tasks.includes(name));
  if (offering.length === 0) {
    const names = [...new Set(running.flatMap((s) => s.tasks))].filter((n) => !n.startsWith('prefork.')).sort();
    return `prefork: warning: no running supervisor offers "${name}" now${names.length ? ` (they run ${names.join(', ')})` : ''}; the task waits queued until one does\n`;
  }
  // --queues on every one of them, none with this queue (a typo in --queue, say).
  const limited = offering.map(snapshotQueues).filter((q) => q !== null);
  if (limited.length < offering.length || limited.some((q) => q.includes(queue))) return null;
  const claimed = [...new Set(limited.flat())].sort();
  return `prefork: warning: no running supervisor that offers "${name}" claims from queue "${queue}" now (they claim from ${claimed.join(', ')}); the task waits queued until one does\n`;
}
