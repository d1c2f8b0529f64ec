/**
 * `prefork send --file tasks.ndjson`: many tasks at once. Every line is checked before the first insert
 * (a bad line fails the run with nothing sent, unless --skip-invalid); the tasks go in batches, one
 * statement and transaction each; with --wait, their completion is followed by polling the ids still open.
 */
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { redactSecrets } from '../../db/connection-string.js';
import { PreforkError } from '../../errors.js';
import { addTasks } from '../../queue/add-tasks.js';
import { durationPercentiles, settledAmong, type Percentiles } from '../../queue/bulk-outcomes.js';
import { checkTaskName } from '../../queue/known-tasks.js';
import { liveSupervisors } from '../../queue/supervisors.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import type { TaskState } from '../../queue/task-row.js';
import { Progress } from '../bulk/progress.js';
import { parseTaskLines, type BadLine, type LineDefaults, type TaskLine } from '../bulk/task-lines.js';
import { locateDatabase, openDatabase, unservedSchemaWarning, type DatabaseTarget } from '../database.js';
import { exitCodes } from '../exit-codes.js';
import { count, plural } from '../format.js';
import { sleep } from '../sleep.js';

export interface SendFileOptions {
  file: string;
  defaults: LineDefaults;
  skipInvalid: boolean;
  batchSize: number;
  wait: boolean;
  timeoutMs: number | undefined;
  json: boolean;
}

export interface SendFileSummary {
  sent: number;
  firstId: string | null;
  lastId: string | null;
  invalid: BadLine[];
  /** With --wait: how the sent tasks ended; `unfinished` when --timeout passed (or Ctrl-C) first, `missing` if deleted meanwhile. */
  outcome: {
    succeeded: number;
    failed: number;
    timedOut: number;
    cancelled: number;
    unfinished: number;
    missing: number;
    /** Every task that ended otherwise than succeeded (`missing`: deleted meanwhile), by id. */
    notSucceeded: { id: string; state: Exclude<TaskState, 'queued' | 'running' | 'succeeded'> | 'missing' }[];
    /** started_at → finished_at of the last attempt, in ms. */
    runMs: Percentiles | null;
    /** created_at → finished_at: queueing, retries and the run, in ms. */
    totalMs: Percentiles | null;
  } | null;
}

const pollMs = 200;
/** Bad lines printed on stderr; --json lists them all. */
const maxReported = 100;

export async function sendFile(database: DatabaseTarget, options: SendFileOptions): Promise<void> {
  const text = await readInput(options.file);
  const { tasks: parsed, bad } = parseTaskLines(text, options.defaults);
  const { url, state } = await locateDatabase(database);
  const client = await openDatabase({ ...database, url }, 'prefork send --file');
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  try {
    const { tasks, unknown, known } = await knownTasksOnly(client, database.schema, parsed);
    if (known.length === 0) {
      // Not while a supervisor is starting: it tells what it offers once its workers are ready.
      const live = await liveSupervisors(client, database.schema, supervisorDefaults.leaseMs);
      if (!live.some((s) => s.state === 'starting')) process.stderr.write(unservedSchemaWarning(database.schema, 'the tasks wait queued'));
    }
    const invalid = [...bad, ...unknown].sort((a, b) => a.line - b.line);
    reportInvalid(invalid, unknown.length > 0 ? known : []);
    const summary: SendFileSummary = { sent: 0, firstId: null, lastId: null, invalid, outcome: null };
    if (invalid.length > 0 && !options.skipInvalid) {
      if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      throw new PreforkError(
        'INVALID_LINES',
        `${plural(invalid.length, 'invalid line')} in ${displayName(options.file)}: nothing was sent (--skip-invalid sends the valid lines)`,
        { exitCode: exitCodes.usage },
      );
    }

    // A line the database refuses as it is sent (a payload past jsonb's limits): skipped with --skip-invalid,
    // else the send stops there, as validation would have stopped it before anything was sent.
    const unstorable = (bad: BadLine): boolean => {
      if (!options.skipInvalid) return false;
      summary.invalid.push(bad);
      reportInvalid([bad], []);
      return true;
    };
    const ids = await insertAll(client, database.schema, tasks, options.batchSize, stop.signal, (e) => lostDatabase(e, 'sending', url, state !== null), unstorable);
    summary.sent = ids.length;
    summary.firstId = ids[0] ?? null;
    summary.lastId = ids.at(-1) ?? null;
    if (options.wait && !stop.signal.aborted) {
      summary.outcome = await waitForAll(client, database.schema, ids, options.timeoutMs, stop.signal).catch((error: unknown) => {
        const sent = `; the ${plural(ids.length, 'task')} (ids ${summary.firstId}–${summary.lastId}) were sent`;
        throw new PreforkError('DATABASE_LOST', `${lostDatabase(error, 'waiting', url, state !== null)}${sent}`, {
          cause: error,
          exitCode: exitCodes.unavailable,
        });
      });
    }

    process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : renderSummary(summary, tasks.length));
    process.exitCode = exitCode(summary, stop.signal.aborted);
  } finally {
    process.off('SIGINT', onSignal);
    await client.end().catch(() => {});
  }
}

async function readInput(file: string): Promise<string> {
  try {
    if (file !== '-') return await readFile(file, 'utf8');
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  } catch (error) {
    throw new PreforkError('UNREADABLE_FILE', `cannot read ${displayName(file)}: ${(error as Error).message}`, { cause: error, exitCode: exitCodes.usage });
  }
}

/** Lines whose task no supervisor has offered are invalid, as `send` refuses such a name. */
async function knownTasksOnly(db: pg.Client, schema: string, lines: TaskLine[]): Promise<{ tasks: TaskLine[]; unknown: BadLine[]; known: string[] }> {
  // An empty list: no supervisor ever offered names on this database, and any name goes (as for `send`).
  const { known } = await checkTaskName(db, schema, '');
  if (known.length === 0) return { tasks: lines, unknown: [], known };
  const names = new Set(known);
  const tasks: TaskLine[] = [];
  const unknown: BadLine[] = [];
  for (const l of lines) {
    if (names.has(l.task.task)) tasks.push(l);
    else unknown.push({ line: l.line, reason: `unknown task "${l.task.task}"` });
  }
  return { tasks, unknown, known };
}

function reportInvalid(invalid: BadLine[], known: string[]): void {
  if (invalid.length === 0) return;
  const shown = invalid.slice(0, maxReported).map((b) => `prefork: line ${b.line}: ${b.reason}\n`);
  if (invalid.length > maxReported) shown.push(`prefork: … and ${plural(invalid.length - maxReported, 'more invalid line')} (--json lists them all)\n`);
  if (known.length > 0) shown.push(`prefork: the supervisors know the tasks ${known.join(', ')}\n`);
  process.stderr.write(shown.join(''));
}

/**
 * Batch after batch, each its own statement and transaction; stops between batches on Ctrl-C. A batch the
 * database refuses for a value it cannot store is sent again line by line, to name the line (`unstorable`
 * says whether to go on without it).
 */
async function insertAll(
  db: pg.Client,
  schema: string,
  tasks: TaskLine[],
  batchSize: number,
  signal: AbortSignal,
  lost: (error: unknown) => string,
  unstorable: (bad: BadLine) => boolean,
): Promise<string[]> {
  const ids: string[] = [];
  let lastLine: number | undefined;
  const progress = new Progress(process.stderr, 'sent', tasks.length);
  const sentSoFar = () => (ids.length > 0 ? `; sent before it: ${plural(ids.length, 'task')} (lines up to ${lastLine})` : '; nothing was sent');
  const send = async (batch: TaskLine[]) => {
    ids.push(...(await addTasks(db, schema, batch.map((l) => l.task))));
    lastLine = batch.at(-1)!.line;
  };
  const fail = (error: unknown): never => {
    progress.finish(ids.length);
    throw new PreforkError('DATABASE_LOST', `${lost(error)}${sentSoFar()}`, { cause: error, exitCode: exitCodes.unavailable });
  };
  for (let start = 0; start < tasks.length && !signal.aborted; start += batchSize) {
    const batch = tasks.slice(start, start + batchSize);
    try {
      await send(batch);
    } catch (error) {
      if (!refused(error)) fail(error);
      for (const l of batch) {
        try {
          await send([l]);
        } catch (lineError) {
          if (!refused(lineError)) fail(lineError);
          const reason = (lineError as Error).message;
          if (!unstorable({ line: l.line, reason })) {
            progress.finish(ids.length);
            throw new PreforkError('UNSTORABLE_LINE', `line ${l.line}: ${reason}${sentSoFar()} (--skip-invalid sends the others)`, { cause: lineError, exitCode: exitCodes.usage });
          }
        }
      }
    }
    progress.update(ids.length);
  }
  progress.finish(ids.length, signal.aborted ? `(interrupted: lines up to ${lastLine ?? '-'} sent)` : '');
  return ids;
}

async function waitForAll(db: pg.Client, schema: string, ids: string[], timeoutMs: number | undefined, signal: AbortSignal): Promise<NonNullable<SendFileSummary['outcome']>> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
  const tally: Record<TaskState | 'missing', number> = { queued: 0, running: 0, succeeded: 0, failed: 0, timed_out: 0, cancelled: 0, missing: 0 };
  const pending = new Set(ids);
  const notSucceeded: NonNullable<SendFileSummary['outcome']>['notSucceeded'] = [];
  const progress = new Progress(process.stderr, 'finished', ids.length);
  const failures = () => tally.failed + tally.timed_out + tally.cancelled + tally.missing;
  for (;;) {
    for (const { id, state } of await settledAmong(db, schema, [...pending])) {
      pending.delete(id);
      tally[state ?? 'missing'] += 1;
      if (state !== 'succeeded') notSucceeded.push({ id, state: (state ?? 'missing') as (typeof notSucceeded)[number]['state'] });
    }
    const note = failures() > 0 ? `(${count(failures())} not succeeded)` : '';
    if (pending.size === 0 || Date.now() >= deadline || signal.aborted) {
      progress.finish(ids.length - pending.size, note);
      break;
    }
    progress.update(ids.length - pending.size, note);
    await sleep(Math.min(pollMs, deadline - Date.now()), signal);
  }
  const { run, total } = await durationPercentiles(db, schema, ids);
  return {
    succeeded: tally.succeeded,
    failed: tally.failed,
    timedOut: tally.timed_out,
    cancelled: tally.cancelled,
    unfinished: pending.size,
    missing: tally.missing,
    notSucceeded: notSucceeded.sort((a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : 1)),
    runMs: run,
    totalMs: total,
  };
}

/** 1 when any task did not succeed; else 124 when --timeout passed first; 130 after Ctrl-C; else 0. */
function exitCode(s: SendFileSummary, interrupted: boolean): number {
  const o = s.outcome;
  if (o && o.failed + o.timedOut + o.cancelled + o.missing > 0) return exitCodes.taskFailed;
  if (interrupted) return exitCodes.forced;
  if (o && o.unfinished > 0) return exitCodes.timeout;
  return exitCodes.ok;
}

export function renderSummary(s: SendFileSummary, valid: number): string {
  const ids = s.firstId === null ? '' : s.firstId === s.lastId ? ` (id ${s.firstId})` : ` (ids ${s.firstId}–${s.lastId})`;
  const lines = [
    `sent ${plural(s.sent, 'task')}${ids}${s.sent < valid ? ` of ${count(valid)}` : ''}${s.invalid.length > 0 ? `; skipped ${plural(s.invalid.length, 'invalid line')}` : ''}`,
  ];
  const o = s.outcome;
  if (o && s.sent > 0) {
    const finished = s.sent - o.unfinished - o.missing;
    const extra = [o.unfinished > 0 ? `${count(o.unfinished)} unfinished` : '', o.missing > 0 ? `${count(o.missing)} deleted meanwhile` : ''].filter(Boolean);
    lines.push(
      `finished ${count(finished)}: ${count(o.succeeded)} succeeded, ${count(o.failed)} failed, ${count(o.timedOut)} timed out, ${count(o.cancelled)} cancelled${extra.length ? `; ${extra.join(', ')}` : ''}`,
    );
    if (o.notSucceeded.length > 0) {
      const shown = o.notSucceeded.slice(0, 10).map((t) => `${t.id} ${t.state.replace('_', ' ')}`);
      const more = o.notSucceeded.length > 10 ? `, … ${count(o.notSucceeded.length - 10)} more (--json lists them all)` : '';
      lines.push(`not succeeded: ${shown.join(', ')}${more}; see prefork inspect <id>`);
    }
    if (o.runMs) lines.push(`run time (start to end of the last attempt): p50 ${ms(o.runMs.p50)}, p99 ${ms(o.runMs.p99)}`);
    if (o.totalMs) lines.push(`time from send to end: p50 ${ms(o.totalMs.p50)}, p99 ${ms(o.totalMs.p99)}`);
  }
  return `${lines.join('\n')}\n`;
}

function ms(value: number): string {
  if (value < 10) return `${value.toFixed(1)} ms`;
  if (value < 10_000) return `${Math.round(value)} ms`;
  return `${(value / 1000).toFixed(1)} s`;
}

function lostDatabase(error: unknown, doing: 'sending' | 'waiting', url: string, embedded: boolean): string {
  const why = embedded ? ' (the supervisor running the embedded PostgreSQL stopped?)' : '';
  return `lost the database while ${doing}${why}: ${redactSecrets((error as Error)?.message ?? String(error), url)}`;
}

function displayName(file: string): string {
  return file === '-' ? 'stdin' : file;
}

/** The insert refused a value the database cannot store (storing() in task-input.ts says so). */
function refused(error: unknown): boolean {
  return error instanceof PreforkError && error.code === 'INVALID_PAYLOAD';
}
