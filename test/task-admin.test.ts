/**
 * The operator's commands on tasks: `prefork tasks` lists them, `prefork retry` queues finished ones again (by id,
 * or all a filter selects), `prefork cancel` cancels by id; and the client's `list()` and `retry()`.
 */
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import pg from 'pg';
import { createQueue, databaseUrl, query, useTestSchema } from './support/database.js';
import { useClients } from './support/clients.js';
import { runCli, startWithFixtures, useProcessLeakGuard } from './support/processes.js';
import { insertTasks, waitForFinal } from './support/tasks.js';

const schemaName = useTestSchema();
const clients = useClients();
useProcessLeakGuard();

interface ListJson {
  tasks: { id: string; task: string; status: string; attempts: number; maxAttempts: number | null; error: { message: string } | null }[];
  more: boolean;
}

async function cliJson<T>(schema: string, args: string[], code = 0): Promise<T> {
  const r = await runCli([...args, '--json'], { schema });
  expect(r.code, r.stderr).toBe(code);
  return JSON.parse(r.stdout) as T;
}

/** A file whose existence makes `fixture.failWhile` fail: the outage. Removed when the test ends. */
function outage(): { file: string; end(): void } {
  const file = join(tmpdir(), `prefork-test-outage-${randomUUID()}`);
  writeFileSync(file, '');
  onTestFinished(() => rmSync(file, { force: true }));
  return { file, end: () => rmSync(file, { force: true }) };
}

describe('prefork tasks, retry and cancel', () => {
  it("an outage's failures are listed page by page, then retried by task name once it is over: each succeeds on its second attempt", async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const down = outage();
    const failing = await insertTasks(schema, 'fixture.failWhile', Array.from({ length: 6 }, () => ({ file: down.file })));
    const [other] = await insertTasks(schema, 'fixture.fail', [{}]);
    const [ok] = await insertTasks(schema, 'fixture.failOnce', [{}]);
    await waitForFinal(schema, 8);

    const failed = await cliJson<ListJson>(schema, ['tasks', '--state', 'failed']);
    expect(failed.tasks.map((t) => t.id)).toEqual([...failing, other].reverse());
    expect(failed.more).toBe(false);
    // maxAttempts: the row sets none, so the definition's (1), as the supervisor offered it.
    expect(failed.tasks[1]).toMatchObject({ task: 'fixture.failWhile', status: 'failed', attempts: 1, maxAttempts: 1, error: { message: 'the service is down' } });

    // Newest first, a page at a time: --before the last id shown.
    const page1 = await cliJson<ListJson>(schema, ['tasks', '--task', 'fixture.failWhile', '--limit', '4']);
    expect(page1).toMatchObject({ more: true });
    expect(page1.tasks.map((t) => t.id)).toEqual(failing.slice(2).reverse());
    const page2 = await cliJson<ListJson>(schema, ['tasks', '--task', 'fixture.failWhile', '--limit', '4', '--before', failing[2]!]);
    expect(page2).toMatchObject({ more: false });
    expect(page2.tasks.map((t) => t.id)).toEqual(failing.slice(0, 2).reverse());

    const table = await runCli(['tasks', '--limit', '2'], { schema });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ *ID {2}TASK +QUEUE +STATE +TRIES +WHEN +ERROR \/ RESULT$/);
    expect(table.stdout).toMatch(new RegExp(`\\n *${ok} +fixture\\.failOnce +default +succeeded +2/3 +[\\d.]+ (ms|s) ago +\\{"attempt":2\\}\\n`));
    expect(table.stdout).toMatch(new RegExp(`\\n *${other} +fixture\\.fail +default +failed +1/1 +.* ago +Error: the report could not be built\\n`));
    expect(table.stdout).toContain(`… more match: add --before ${other} for the next page\n`);

    down.end();
    const retried = await cliJson<{ retried: string[]; notRetried: unknown[] }>(schema, ['retry', '--task', 'fixture.failWhile']);
    expect(retried).toEqual({ retried: failing, notRetried: [] });
    await waitForFinal(schema, 8);
    const after = await cliJson<ListJson>(schema, ['tasks', '--task', 'fixture.failWhile']);
    expect(after.tasks.map((t) => [t.status, t.attempts, t.maxAttempts])).toEqual(failing.map(() => ['succeeded', 2, 2]));
    // The task of another name was not selected.
    expect((await cliJson<ListJson>(schema, ['tasks', '--state', 'failed'])).tasks.map((t) => t.id)).toEqual([other]);

    const history = await cliJson<{ history: { attempt: number; outcome: string; error: { message: string } | null }[] }>(schema, ['inspect', failing[0]!]);
    expect(history.history.map((h) => [h.attempt, h.outcome, h.error?.message ?? null])).toEqual([
      [1, 'failed', 'the service is down'],
      [2, 'succeeded', null],
    ]);
    await sup.stop();
  });

  it("by id: each id's outcome, exit 1 when one was not retried, and a key a live task holds blocks the retry until it is cancelled", async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const failedRun = await runCli(['send', 'fixture.fail', '--key', 'report-7', '--wait', '--json'], { schema });
    expect(failedRun.code).toBe(1);
    const failed = (JSON.parse(failedRun.stdout) as { id: string }).id;
    const succeeded = (await cliJson<{ id: string }>(schema, ['send', 'fixture.failOnce', '--wait'])).id;
    // The key is free again once its task failed: a later task takes it, due in a minute.
    const later = (await cliJson<{ id: string }>(schema, ['send', 'fixture.fail', '--key', 'report-7', '--delay', '60000'])).id;
    // Sent again while that one waits: its id, and a word that nothing new was sent.
    expect(await runCli(['send', 'fixture.fail', '--key', 'report-7'], { schema })).toEqual({
      code: 0,
      stdout: `${later}\n`,
      stderr: `prefork: task ${later} has key "report-7" and is queued or running: not sent again\n`,
    });
    // Of another name: the word says whose it is; with --wait, its outcome is not this task's: refused, exit 2.
    expect(await runCli(['send', 'fixture.failOnce', '--key', 'report-7'], { schema })).toEqual({
      code: 0,
      stdout: `${later}\n`,
      stderr: `prefork: task ${later} (a fixture.fail task) has key "report-7" and is queued or running: not sent again\n`,
    });
    expect(await cliJson(schema, ['send', 'fixture.failOnce', '--key', 'report-7'])).toEqual({ id: later, task: 'fixture.fail', deduplicated: true });
    expect(await runCli(['send', 'fixture.failOnce', '--key', 'report-7', '--wait', '--timeout', '10000'], { schema })).toEqual({
      code: 2,
      stdout: '',
      stderr: `prefork: error: the key "report-7" is held by task ${later}, a queued fixture.fail task: not sent, and not waited for\n`,
    });

    const refused = await runCli(['retry', failed, succeeded, later, '987654'], { schema });
    expect(refused).toEqual({
      code: 1,
      stderr: '',
      stdout:
        `task ${failed}: not retried: a queued or running task holds its key\n` +
        `task ${succeeded}: not retried: it succeeded (send it again instead)\n` +
        `task ${later}: not retried: it is queued or running\n` +
        'task 987654: not found\n',
    });

    const cancelled = await runCli(['cancel', later, succeeded, '987654'], { schema });
    expect(cancelled).toEqual({
      code: 1,
      stderr: '',
      stdout:
        `task ${later}: cancelled: it was queued and will not run\n` +
        `task ${succeeded}: not cancelled: it has already finished\n` +
        'task 987654: not found\n',
    });
    expect(await cliJson(schema, ['cancel', later], 1)).toEqual({ results: [{ id: later, outcome: 'finished' }] });

    // The key is free: the retry queues the task at once, with one more attempt, and it runs (and fails) again.
    expect(await cliJson(schema, ['retry', failed])).toEqual({ retried: [failed], notRetried: [] });
    await expect.poll(async () => (await query<{ state: string; attempts: number; max_attempts: number }>(`select state, attempts, max_attempts from "${schema}".tasks where id = $1`, [failed]))[0], { timeout: 15_000 }).toEqual({ state: 'failed', attempts: 2, max_attempts: 2 });

    // The client does the same.
    const client = clients.client(schema);
    expect(await client.retry(later, { attempts: 2 })).toBe('retried');
    const ran = await client.result(later, { timeoutMs: 15_000 });
    // Cancelled before it ever ran: attempts 0, so two more make 2, with the task's backoff between them.
    expect(ran).toMatchObject({ status: 'failed', attempts: 2, maxAttempts: 2 });
    // A cancelled task keeps the attempts it did not use: this one had 3, cancelled while queued it used none.
    const unused = (await cliJson<{ id: string }>(schema, ['send', 'prefork.echo', '{}', '--max-attempts', '3', '--delay', '60000'])).id;
    expect(await client.cancel(unused)).toBe('cancelled');
    expect(await cliJson(schema, ['retry', unused])).toEqual({ retried: [unused], notRetried: [] });
    expect(await client.result(unused, { timeoutMs: 15_000 })).toMatchObject({ status: 'succeeded', attempts: 1, maxAttempts: 3 });
    expect(await client.retry(succeeded)).toBe('succeeded');
    const { tasks, more } = await client.list({ states: ['failed'], limit: 1 });
    expect([tasks.map((t) => t.id), more]).toEqual([[later], true]);
    await expect(client.retry('x1')).rejects.toMatchObject({ code: 'INVALID_TASK_ID' });
    await expect(client.retry(failed, { attempts: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(client.list({ states: ['done' as never] })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('unknown state "done"') });
    await sup.stop();
  });

  it('a bulk retry takes failed and timed-out tasks, not cancelled ones unless --state says so, and only the newest of one key', async () => {
    const schema = schemaName();
    await createQueue(schema);
    expect(await runCli(['tasks'], { schema })).toEqual({ code: 0, stderr: '', stdout: 'no task matches\n' });
    const ids = await insertTasks(schema, 'x.job', [{}, {}, {}, {}]);
    const [keyedOld, keyedNew] = await insertTasks(schema, 'x.job', [{}, {}]);
    await query(
      `update "${schema}".tasks set state = (array['failed', 'timed_out', 'cancelled', 'succeeded'])[(id - $1::bigint + 1)::int], attempts = 1, finished_at = now() where id = any($2::bigint[])`,
      [ids[0], ids],
    );
    await query(`update "${schema}".tasks set state = 'failed', attempts = 1, finished_at = now(), key = 'k' where id = any($1::bigint[])`, [[keyedOld, keyedNew]]);
    // Supervisors are woken at once (NOTIFY on the schema's wake channel), not at their next safety poll.
    const listener = new pg.Client({ connectionString: databaseUrl() });
    await listener.connect();
    clients.closeLater({ close: () => listener.end() });
    const wakes: string[] = [];
    listener.on('notification', (n) => wakes.push(n.channel));
    await listener.query(`listen "${schema}:wake"`);
    expect(await cliJson(schema, ['retry', '--task', 'x.job'])).toEqual({ retried: [ids[0], ids[1], keyedNew], notRetried: [{ id: keyedOld, outcome: 'key_in_use' }] });
    await expect.poll(() => wakes).toEqual([`${schema}:wake`]);
    expect(await cliJson(schema, ['retry', '--state', 'cancelled', '--attempts', '5'])).toEqual({ retried: [ids[2]], notRetried: [] });
    const rows = await query<{ id: string; state: string; max_attempts: number | null; history: unknown[] }>(`select id::text, state, max_attempts, history from "${schema}".tasks order by id`);
    expect(rows.map((r) => [r.state, r.max_attempts, r.history.length])).toEqual([
      ['queued', 2, 1],
      ['queued', 2, 1],
      ['queued', 6, 1],
      ['succeeded', null, 0],
      ['failed', null, 0],
      ['queued', 2, 1],
    ]);
    const text = await runCli(['retry', '--queue', 'default'], { schema });
    expect(text).toEqual({ code: 0, stderr: '', stdout: `nothing retried\nnot retried: 1 task whose key a queued or running task holds (${keyedOld})\n` });
  });

  it('orders ids as numbers, past a power of ten: the newest page is the newest tasks, and retry lists them in order', async () => {
    const schema = schemaName();
    await createQueue(schema);
    const ids = await insertTasks(schema, 'x.job', Array.from({ length: 12 }, () => ({})));
    const byNumber = (a: string, b: string) => Number(a) - Number(b);
    const newest = [...ids].sort(byNumber).reverse();
    // Ids 1–12 in a fresh schema: as text, "9" > "12" would put 9, 8, 7 first and leave 10–12 off the page.
    expect(newest.slice(0, 3).some((id) => id.length > newest[11]!.length)).toBe(true);
    const page1 = await cliJson<ListJson>(schema, ['tasks', '--limit', '3']);
    expect(page1.tasks.map((t) => t.id)).toEqual(newest.slice(0, 3));
    const page2 = await cliJson<ListJson>(schema, ['tasks', '--limit', '5', '--before', newest[2]!]);
    expect(page2.tasks.map((t) => t.id)).toEqual(newest.slice(3, 8));
    expect((await clients.client(schema).list({ limit: 12 })).tasks.map((t) => t.id)).toEqual(newest);
    await query(`update "${schema}".tasks set state = 'failed', attempts = 1, finished_at = now()`);
    expect(await cliJson(schema, ['retry', '--task', 'x.job'])).toEqual({ retried: [...newest].reverse(), notRetried: [] });
  });

  it('refuses bad input with one line and exit 2, before touching the database', async () => {
    const schema = schemaName();
    const cases: [string[], string][] = [
      [['retry'], 'give task ids, or --state, --task or --queue to retry every task they select (e.g. --state failed)'],
      [['retry', '1', '--state', 'failed'], 'give task ids or --state/--task/--queue, not both'],
      [['retry', '--state', 'succeeded'], `option '--state <states>' argument 'succeeded' is invalid. --state: unknown state "succeeded" (one of failed, timed_out, cancelled)`],
      [['retry', '1', '--attempts', '0'], `option '--attempts <n>' argument '0' is invalid. --attempts must be a whole number from 1 to 1000000`],
      [['tasks', '--state', 'done'], `option '--state <states>' argument 'done' is invalid. --state: unknown state "done" (one of queued, running, succeeded, failed, timed_out, cancelled)`],
      [['tasks', '--limit', '0'], `option '--limit <n>' argument '0' is invalid. --limit must be a whole number from 1 to 10000`],
      [['tasks', '--before', 'x'], `option '--before <id>' argument 'x' is invalid. invalid task id "x": a task id is a positive whole number`],
      [['cancel', '0'], 'invalid task id "0": a task id is a positive whole number'],
      // A whole number past bigint (2^63 - 1) is out of range, for every command that takes task ids.
      [['cancel', '9223372036854775808'], 'invalid task id "9223372036854775808": it is out of range (task ids go up to 9223372036854775807)'],
      [['retry', '1', '9223372036854775808'], 'invalid task id "9223372036854775808": it is out of range (task ids go up to 9223372036854775807)'],
      [
        ['tasks', '--before', '9223372036854775808'],
        `option '--before <id>' argument '9223372036854775808' is invalid. invalid task id "9223372036854775808": it is out of range (task ids go up to 9223372036854775807)`,
      ],
      [['cancel'], "missing required argument 'ids'"],
    ];
    for (const [args, message] of cases) {
      expect(await runCli(args, { schema, env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } }), args.join(' ')).toEqual({ code: 2, stdout: '', stderr: `prefork: error: ${message}\n` });
    }
  });
});
