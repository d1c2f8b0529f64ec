/**
 * The operator's commands on tasks themselves: `prefork tasks` lists them (the failed ones, say), `prefork cancel`
 * and `prefork retry` act on some by id, and `retry` also on every finished task a filter selects.
 */
import { Command } from 'commander';
import { PreforkError, publicError } from '../../errors.js';
import { cancelTask, type CancelOutcome } from '../../queue/cancel-task.js';
import { defaultListLimit, listTasks } from '../../queue/list-tasks.js';
import { defaultRetryStates, retryableStates, retryMatching, retryTasks, type RetryableState, type RetryOutcome } from '../../queue/retry-tasks.js';
import { taskStates, type TaskState, type TaskSummaryRow } from '../../queue/task-row.js';
import { toTaskView } from '../../queue/task-view.js';
import { liveSupervisorFigures } from '../../queue/watch-report.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import type { Queryable } from '../../db/queryable.js';
import { openDatabase, resolveDatabase, type DatabaseFlags } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import { duration, plural } from '../format.js';
import { integer, nonEmpty, stateList, taskId, taskIds } from '../parse.js';
import { addDatabaseOptions } from './common.js';

interface ListFlags extends DatabaseFlags {
  state?: TaskState[];
  task?: string;
  queue?: string;
  before?: string;
  limit?: number;
  json?: boolean;
}

export function tasksCommand(): Command {
  const command = new Command('tasks')
    .description('list tasks, newest first: by state, task name and queue')
    .option('--state <states>', `only these states, comma-separated (${taskStates.join(', ')})`, stateList('--state', taskStates))
    .option('--task <name>', 'only tasks of this name', nonEmpty('--task'))
    .option('--queue <name>', 'only tasks of this queue', nonEmpty('--queue'))
    .option('--before <id>', 'only tasks older than this id (the next page)', taskId)
    .option('--limit <n>', `at most this many (default ${defaultListLimit})`, integer('--limit', 1, 10_000))
    .option('--json', 'print one JSON object: { tasks: [{ id, task, queue, status, result, error, attempts, … }], more }');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
WHEN is when a queued task is due, how long a running one has run ("not started" for one its supervisor claimed
ahead and holds for a free worker), and how long ago a finished one ended.
Exit codes: 0 listed (also when none matched), 2 bad input, 3 database unreachable or no queue in the schema.

Examples:
  $ prefork tasks --state failed,timed_out
  $ prefork tasks --task report.build --limit 10 --json
  $ prefork tasks --state failed --before 1200        # the page after the one that ended at 1200`,
  );
  return command.action(async (flags: ListFlags) => {
    const database = resolveDatabase(flags);
    const client = await openDatabase(database, 'prefork tasks', { existing: true });
    try {
      const filter = { states: flags.state, name: flags.task, queue: flags.queue, before: flags.before, limit: flags.limit };
      const { rows, more } = await listTasks(client, database.schema, filter);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ tasks: rows.map(toTaskView), more })}\n`);
        return;
      }
      const places = rows.some((t) => t.state === 'running') ? await runningPlaces(client, database.schema, rows) : new Map<string, Place>();
      process.stdout.write(renderTaskList(rows, more, Date.now(), places));
    } finally {
      await client.end().catch(() => {});
    }
  });
}

/**
 * Where a running task is, as its supervisor's snapshot (up to a heartbeat old) tells: on a worker for so long,
 * or claimed ahead and waiting in the supervisor for a free worker. A row's start time is its claim's, so only
 * the snapshot tells these apart.
 */
type Place = { onWorkerMs: number } | 'waiting';

async function runningPlaces(client: Queryable, schema: string, rows: readonly TaskSummaryRow[]): Promise<Map<string, Place>> {
  const supervisors = await liveSupervisorFigures(client, schema, supervisorDefaults.leaseMs);
  const places = new Map<string, Place>();
  for (const t of rows) {
    if (t.state !== 'running') continue;
    const s = supervisors.find((x) => x.id === t.supervisor_id);
    if (!s) continue;
    const current = s.workers.flatMap((w) => w.current).find((c) => c.taskId === t.id);
    if (current) places.set(t.id, { onWorkerMs: current.runningMs + s.snapshotAgeMs });
    // Claimed before the snapshot and not on a worker in it: waiting. Claimed since, it cannot be told.
    else if (t.started_at && t.started_at.getTime() <= Date.now() - s.snapshotAgeMs) places.set(t.id, 'waiting');
  }
  return places;
}

/** The list as a table, with a hint for the next page when more match. */
export function renderTaskList(rows: readonly TaskSummaryRow[], more: boolean, now: number, places: ReadonlyMap<string, Place> = new Map()): string {
  if (rows.length === 0) return 'no task matches\n';
  const table = rows.map((t) => [
    t.id,
    t.name,
    t.queue,
    t.state,
    t.max_attempts === null ? String(t.attempts) : `${t.attempts}/${t.max_attempts}`,
    when(t, now, places.get(t.id)),
    outcomeText(t),
  ]);
  const header = ['ID', 'TASK', 'QUEUE', 'STATE', 'TRIES', 'WHEN', 'ERROR / RESULT'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padStart(widths[0]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const lines = [line(header), ...table.map(line)];
  if (more) lines.push(`… more match: add --before ${rows[rows.length - 1]!.id} for the next page`);
  return `${lines.join('\n')}\n`;
}

function when(t: TaskSummaryRow, now: number, place: Place | undefined): string {
  if (t.state === 'queued') {
    const due = t.run_at.getTime() - now;
    return due > 0 ? `due in ${duration(due)}` : 'due';
  }
  if (t.state === 'running') {
    const claimed = t.started_at ? duration(now - t.started_at.getTime()) : null;
    if (place === 'waiting') return `not started (claimed ${claimed ?? '-'} ago)`;
    if (place) return `for ${duration(place.onWorkerMs)}`;
    return claimed ? `for ${claimed}` : 'running';
  }
  return t.finished_at ? `${duration(now - t.finished_at.getTime())} ago` : '-';
}

const maxOutcomeText = 80;

/** A failed task's error (code, or name: message), a succeeded one's result, on one line and cut short. */
function outcomeText(t: TaskSummaryRow): string {
  let text: string;
  if (t.state === 'succeeded') text = JSON.stringify(t.result) ?? 'null';
  else if (t.error) {
    const e = publicError(t.error)!;
    text = `${e.code ? `[${e.code}] ` : ''}${e.name}: ${e.message}`;
  } else text = '';
  text = text.replace(/\s+/g, ' ');
  return text.length > maxOutcomeText ? `${text.slice(0, maxOutcomeText - 1)}…` : text;
}

interface CancelFlags extends DatabaseFlags {
  json?: boolean;
}

const cancelWords: Record<CancelOutcome, string> = {
  cancelled: 'cancelled: it was queued and will not run',
  cancelling: 'cancelling: it is running; its signal was aborted, and it ends cancelled when it stops (unless it succeeds first)',
  finished: 'not cancelled: it has already finished',
  not_found: 'not found',
};

export function cancelCommand(): Command {
  const command = new Command('cancel')
    .description('cancel tasks: a queued one never runs; a running one has its signal aborted and its query cancelled, and ends cancelled')
    .argument('<ids...>', 'task ids')
    .option('--json', 'print one JSON object: { results: [{ id, outcome }] }, outcome cancelled, cancelling, finished or not_found');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 every task cancelled or being cancelled, 1 some not found or already finished, 2 malformed id,
3 database unreachable.

Examples:
  $ prefork cancel 42
  $ prefork cancel 42 43 44 --json`,
  );
  return command.action(async (ids: string[], flags: CancelFlags) => {
    const checked = [...new Set(taskIds(ids))];
    const database = resolveDatabase(flags);
    const client = await openDatabase(database, 'prefork cancel', { existing: true });
    const results: { id: string; outcome: CancelOutcome }[] = [];
    try {
      for (const id of checked) results.push({ id, outcome: await cancelTask(client, database.schema, id) });
    } finally {
      await client.end().catch(() => {});
    }
    process.stdout.write(flags.json ? `${JSON.stringify({ results })}\n` : results.map((r) => `task ${r.id}: ${cancelWords[r.outcome]}\n`).join(''));
    if (results.some((r) => r.outcome === 'finished' || r.outcome === 'not_found')) process.exitCode = exitCodes.taskFailed;
  });
}

interface RetryFlags extends DatabaseFlags {
  state?: RetryableState[];
  task?: string;
  queue?: string;
  attempts: number;
  json?: boolean;
}

const retryWords: Record<RetryOutcome, string> = {
  retried: 'queued again',
  not_found: 'not found',
  succeeded: 'not retried: it succeeded (send it again instead)',
  not_finished: 'not retried: it is queued or running',
  key_in_use: 'not retried: a queued or running task holds its key',
};

export function retryCommand(): Command {
  const command = new Command('retry')
    .description('queue tasks that failed, timed out or were cancelled again, by id or by state, task name and queue')
    .argument('[ids...]', 'task ids')
    .option('--state <states>', 'retry every task in these states (failed, timed_out, cancelled; comma-separated)', stateList('--state', retryableStates))
    .option('--task <name>', 'retry every failed or timed-out task of this name (with --state: of those states)', nonEmpty('--task'))
    .option('--queue <name>', 'retry every failed or timed-out task of this queue (with --state: of those states)', nonEmpty('--queue'))
    .option('--attempts <n>', 'attempts each retried task may take', integer('--attempts', 1, 1_000_000), 1)
    .option('--json', 'print one JSON object: { retried: [ids], notRetried: [{ id, outcome }] }');
  addDatabaseOptions(command);
  command.addHelpText(
    'after',
    `
A retried task is queued again, due now, with --attempts more attempts (a cancelled one also keeps those it had
not used); its attempt count and history go on (prefork inspect task <id> shows every attempt). A succeeded task
is not retried: send it again instead. A task whose key a queued or running task holds is left alone (its retry
would be a duplicate).

Exit codes: 0 every given task retried (with a filter: also when none matched), 1 some given task not retried,
2 bad input, 3 database unreachable.

Examples:
  $ prefork retry 42 43
  $ prefork retry --state failed,timed_out --task report.build
  $ prefork retry --queue mail --attempts 3`,
  );
  return command.action(async (ids: string[], flags: RetryFlags) => {
    const byFilter = flags.state !== undefined || flags.task !== undefined || flags.queue !== undefined;
    if (ids.length > 0 && byFilter) {
      throw new PreforkError('IDS_AND_FILTER', 'give task ids or --state/--task/--queue, not both', { exitCode: exitCodes.usage });
    }
    if (ids.length === 0 && !byFilter) {
      throw new PreforkError('NOTHING_TO_RETRY', 'give task ids, or --state, --task or --queue to retry every task they select (e.g. --state failed)', {
        exitCode: exitCodes.usage,
      });
    }
    const checked = taskIds(ids);
    const database = resolveDatabase(flags);
    const client = await openDatabase(database, 'prefork retry', { existing: true });
    let results: { id: string; outcome: RetryOutcome }[];
    try {
      results = byFilter
        ? await retryMatching(client, database.schema, { states: flags.state ?? defaultRetryStates, name: flags.task, queue: flags.queue }, flags.attempts)
        : await retryTasks(client, database.schema, checked, flags.attempts);
    } finally {
      await client.end().catch(() => {});
    }
    const retried = results.filter((r) => r.outcome === 'retried').map((r) => r.id);
    const notRetried = results.filter((r) => r.outcome !== 'retried');
    if (flags.json) process.stdout.write(`${JSON.stringify({ retried, notRetried })}\n`);
    else if (byFilter) process.stdout.write(renderBulkRetry(retried, notRetried.map((r) => r.id)));
    else process.stdout.write(results.map((r) => `task ${r.id}: ${retryWords[r.outcome]}\n`).join(''));
    if (!byFilter && notRetried.length > 0) process.exitCode = exitCodes.taskFailed;
  });
}

const idsShown = 20;

function renderBulkRetry(retried: readonly string[], keyInUse: readonly string[]): string {
  const ids = (list: readonly string[]) => `${list.slice(0, idsShown).join(', ')}${list.length > idsShown ? `, … (${list.length - idsShown} more; --json lists all)` : ''}`;
  const none = keyInUse.length === 0 ? 'no task matched: nothing retried' : 'nothing retried';
  const lines = [retried.length === 0 ? none : `queued again: ${plural(retried.length, 'task')} (${ids(retried)})`];
  if (keyInUse.length > 0) lines.push(`not retried: ${plural(keyInUse.length, 'task')} whose key a queued or running task holds (${ids(keyInUse)})`);
  return `${lines.join('\n')}\n`;
}
