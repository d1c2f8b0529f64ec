/**
 * Values PostgreSQL cannot store. Its text, and so its jsonb, holds no NUL character, and its jsonb no lone UTF-16
 * surrogate: such a payload is refused where it is sent; such a result fails its attempt, such an error is
 * recorded with U+FFFD in their place; a thrown value that cannot even be read fails its task like any other; and
 * an outcome the database still refuses holds back no other outcome. With them, the client API's other argument
 * checks (options, ids), which used to reach the database as SQL errors.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { Settler } from '../src/primary/settler.js';
import { insertClaimed } from '../src/queue/add-claimed.js';
import { useClients } from './support/clients.js';
import { databaseUrl, query, useTestSchema } from './support/database.js';
import { runCli, startWithFixtures as start, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
const { client, closeLater } = useClients();

async function migrated(schema: string): Promise<pg.Client> {
  const db = new pg.Client({ connectionString: databaseUrl(), application_name: 'prefork unstorable test' });
  await db.connect();
  closeLater({ close: () => db.end() });
  await migrate(db, schema);
  return db;
}

/** `n` tasks running under `supervisorId` (inserted claimed, as a direct submission is), for a Settler to settle. */
async function runningTasks(db: pg.Client, schema: string, supervisorId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const row = await insertClaimed(db, schema, { name: 'report', payload: { i }, queue: 'default', priority: 0, maxAttempts: 1, key: null, supervisorId, submission: randomUUID() });
    ids.push(row.id);
  }
  return ids;
}

const taskCount = async (schema: string) => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks`))[0]!.n;

describe('values PostgreSQL cannot store', () => {
  it('a payload, name, queue or key with a NUL character or a lone surrogate, and any other bad argument, is refused before anything is written', async () => {
    const schema = schemaName();
    await migrated(schema);

    const sent = await runCli(['send', 'prefork.echo', '{"text": "a\\u0000b"}', '--wait'], { schema });
    expect(sent.code).toBe(2);
    expect(sent.stderr).toBe('prefork: error: the payload contains a NUL character (\\u0000), which PostgreSQL cannot store\n');

    const surrogate = await runCli(['send', 'prefork.echo', '{"text": "\\ud800"}'], { schema });
    expect(surrogate.code).toBe(2);
    expect(surrogate.stderr).toBe('prefork: error: the payload contains a lone UTF-16 surrogate (\\ud800, half of a pair), which PostgreSQL cannot store\n');

    const lines = ['{"task": "prefork.echo"}', '{"task": "prefork.echo", "payload": {"k\\u0000": 1}}', '{"task": "prefork.echo", "payload": ["\\udc00"]}'];
    const file = await runCli(['send', '--file', '-'], { schema, input: `${lines.join('\n')}\n` });
    expect(file.code).toBe(2);
    expect(file.stderr).toContain('line 2: contains a NUL character (\\u0000), which PostgreSQL cannot store');
    expect(file.stderr).toContain('line 3: contains a lone UTF-16 surrogate (\\udc00, half of a pair), which PostgreSQL cannot store');
    expect(file.stderr).not.toMatch(/\n\s+at /);

    const prefork = client(schema);
    await expect(prefork.send('prefork.echo', { text: 'a\u0000b' })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    await expect(prefork.run('prefork.echo', { nested: ['a\u0000b'] }, { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    await expect(prefork.send('prefork.echo', { text: '\u{1F600}'.slice(1) })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    await expect(prefork.sendMany([{ task: 'prefork.echo' }, { task: 'prefork.echo', payload: { text: '\u0000' } }])).rejects.toMatchObject({
      code: 'INVALID_PAYLOAD',
      message: 'task 2: the payload contains a NUL character (\\u0000), which PostgreSQL cannot store',
    });
    await expect(prefork.send('prefork.\u0000echo', {})).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(prefork.send('', {})).rejects.toMatchObject({ code: 'INVALID_TASK_NAME' });
    // Options and ids, checked as the columns hold them, before the database sees them.
    for (const options of [{ priority: 1.5 }, { maxAttempts: 0 }, { delayMs: -5 }, { runAt: new Date('nope') }, { queue: '' }, { runAt: new Date(), delayMs: 10 }]) {
      await expect(prefork.send('prefork.echo', {}, options as never), JSON.stringify(options)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
    await expect(prefork.send('prefork.echo', { n: 1n })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD', message: 'the payload is not JSON-serialisable: Do not know how to serialize a BigInt' });
    await expect(prefork.sendMany([{ task: 'prefork.echo', options: { priority: 2 ** 31 } }])).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(prefork.run('prefork.echo', {}, { signal: 'x' as never, timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: 'signal must be an AbortSignal (got "x")' });
    await expect(prefork.send('prefork.echo', {}, { runAt: new Date(), delayMs: 10 })).rejects.toMatchObject({ message: 'give runAt or delayMs, not both' });
    // A wait longer than a Node timer holds would have ended at once.
    await expect(prefork.result('1', { timeoutMs: 3_000_000_000 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    for (const read of [() => prefork.get('abc'), () => prefork.result('0'), () => prefork.cancel('99999999999999999999')]) {
      await expect(read()).rejects.toMatchObject({ code: 'INVALID_TASK_ID' });
    }
    // A whole number, only too large: said so.
    await expect(prefork.get('9223372036854775808')).rejects.toMatchObject({
      message: 'invalid task id "9223372036854775808": it is out of range (task ids go up to 9223372036854775807)',
    });
    await expect(prefork.get('01')).rejects.toMatchObject({ message: 'invalid task id "01": a task id is a positive whole number, as a string' });
    await expect(prefork.send('prefork.echo', {}, { queue: 'q\u0000' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(prefork.send('prefork.echo', {}, { key: 'k\u0000' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(await taskCount(schema)).toBe(0);

    // A backslash followed by "u0000" is six ordinary characters, and a whole surrogate pair one character: stored.
    const id = await prefork.send('prefork.echo', { text: '\\u0000 \\ud800', emoji: '\u{1F600}' });
    expect(await query(`select payload from "${schema}".tasks where id = $1`, [id])).toEqual([{ payload: { text: '\\u0000 \\ud800', emoji: '\u{1F600}' } }]);
  });

  it('a payload the command line would change is refused, null is kept, and a value the database refuses is bad input: one line, exit 2', async () => {
    const schema = schemaName();
    await migrated(schema);
    // 1e999 parses as Infinity, which JSON would store as null. It is valid JSON: the message does not say otherwise.
    const huge = await runCli(['send', 'prefork.echo', '{"a": 1e999}'], { schema });
    expect(huge).toEqual({ code: 2, stdout: '', stderr: 'prefork: error: the payload contains a number at "a" too large to represent (beyond ±1.8e308); send it as a string\n' });
    expect(await runCli(['send', 'prefork.echo', '1e999'], { schema })).toEqual({
      code: 2,
      stdout: '',
      stderr: 'prefork: error: the payload is a number too large to represent (beyond ±1.8e308); send it as a string\n',
    });
    // An id of 18 digits would lose its last ones (JavaScript holds integers exactly up to 2^53).
    const id = await runCli(['send', 'prefork.echo', '{"orderId": 123456789012345678, "ok": "123456789012345678"}'], { schema });
    expect(id).toEqual({
      code: 2,
      stdout: '',
      stderr: 'prefork: error: the payload contains the integer 123456789012345678, beyond what JavaScript holds exactly (2^53); send it as a string\n',
    });
    // Valid JSON too deep for JavaScript to read (it runs out of stack): said so, not called invalid.
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(await runCli(['send', 'prefork.echo', '-'], { schema, input: deep })).toEqual({
      code: 2,
      stdout: '',
      stderr: 'prefork: error: the payload is nested too deeply for JavaScript to read; nest its arrays and objects less deeply\n',
    });
    const file = await runCli(['send', '--file', '-'], {
      schema,
      input: `{"task": "prefork.echo", "payload": [1e400]}\n{"task": "prefork.echo", "payload": [-90071992547409930]}\n{"task": "prefork.echo", "payload": ${deep}}\n{"task": "prefork.echo"\n`,
    });
    expect(file.code).toBe(2);
    expect(file.stderr).toContain('prefork: line 1: contains a number at "0" too large to represent (beyond ±1.8e308); send it as a string\n');
    expect(file.stderr).toContain('prefork: line 2: contains the integer -90071992547409930, beyond what JavaScript holds exactly (2^53); send it as a string\n');
    expect(file.stderr).toContain('prefork: line 3: is nested too deeply for JavaScript to read; nest its arrays and objects less deeply\n');
    expect(file.stderr).toMatch(/\nprefork: line 4: invalid JSON \(.+\)\n/);
    expect(await taskCount(schema)).toBe(0);

    // null is a payload, not the absence of one.
    const sentNull = await runCli(['send', 'prefork.echo', 'null', '--json'], { schema });
    expect(sentNull.code, sentNull.stderr).toBe(0);
    const nullId = (JSON.parse(sentNull.stdout) as { id: string }).id;
    expect(await client(schema).send('prefork.echo', null)).not.toBe(nullId);
    // sendMany too (its rows came through jsonb_to_recordset, which reads a JSON null as SQL NULL: it was refused).
    await client(schema).sendMany([{ task: 'prefork.echo', payload: null }]);
    expect(await query(`select payload is not null as sql_value, jsonb_typeof(payload) as type from "${schema}".tasks order by id`)).toEqual([
      { sql_value: true, type: 'null' },
      { sql_value: true, type: 'null' },
      { sql_value: true, type: 'null' },
    ]);

    // A key too long for the unique index of keyed tasks: refused before the database sees it (it answered with
    // a stack trace and exit 1), and without the warning that no supervisor runs (it came first: the task waits…).
    const keyed = await runCli(['send', 'prefork.echo', '{}', '--key', randomBytes(3000).toString('hex')], { schema });
    expect(keyed).toEqual({ code: 2, stdout: '', stderr: 'prefork: error: key must be at most 1000 bytes in UTF-8 (got 6000)\n' });
  });

  it('a result or an error PostgreSQL cannot store is recorded, and holds back no other outcome', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const prefork = client(schema);

    const [nulResult, surrogateResult, nulError, unreadable, ...echoes] = await Promise.all([
      prefork.run('fixture.nulResult', {}, { timeoutMs: 10_000 }),
      prefork.run('fixture.surrogateResult', {}, { timeoutMs: 10_000 }),
      prefork.run('fixture.nulError', {}, { timeoutMs: 10_000 }),
      prefork.run('fixture.throwUnreadable', {}, { timeoutMs: 10_000 }),
      ...Array.from({ length: 10 }, (_, i) => prefork.run('prefork.echo', { i }, { timeoutMs: 10_000 })),
    ]);
    expect(nulResult).toMatchObject({
      status: 'failed',
      result: null,
      error: { code: 'RESULT_NOT_SERIALIZABLE', message: "the task's result contains a NUL character (\\u0000), which PostgreSQL cannot store" },
    });
    expect(surrogateResult).toMatchObject({
      status: 'failed',
      error: { code: 'RESULT_NOT_SERIALIZABLE', message: "the task's result contains a lone UTF-16 surrogate (\\ud83d, half of a pair), which PostgreSQL cannot store" },
    });
    const recorded = 'bad \uFFFD byte, half an emoji \uFFFD';
    expect(nulError).toMatchObject({ status: 'failed', error: { message: recorded } });
    expect(await prefork.get(nulError!.id)).toMatchObject({ status: 'failed', error: { message: recorded } });
    // Failed like any throw, on a worker that lives on: the tasks beside it on that worker are not lost with it.
    expect(unreadable).toMatchObject({ status: 'failed', error: { message: 'a thrown value that could not be read (reading it threw: no message here)' } });
    expect(echoes.map((t) => [t.status, t.result])).toEqual(Array.from({ length: 10 }, (_, i) => ['succeeded', { i }]));
    expect(sup.events('worker_crashed')).toEqual([]);
    expect(sup.events('settle_failed')).toEqual([]);
    await sup.stop();
  });

  it('an outcome the database refuses is recorded as a failure; the others of its batch are written one by one', async () => {
    const schema = schemaName();
    const db = await migrated(schema);
    const supervisorId = '00000000-0000-4000-8000-000000000002';
    const [good, refused, failed] = (await runningTasks(db, schema, supervisorId, 3)) as [string, string, string];
    const logged: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const reported: { id: string; state: string }[] = [];
    // Outcomes of tasks that ran 100 ms wait up to 50 ms for the others while one is out: one batch of three.
    const settler = new Settler(db, schema, supervisorId, log, (settled) => reported.push(...settled.map(({ id, state }) => ({ id, state }))), {
      maxLingerMs: 50,
      outstanding: () => 1,
    });
    settler.add({ id: good, state: 'succeeded', result: { ok: true }, workerPid: 1 }, 100);
    // Past the worker's own check, as a result the database cannot store.
    settler.add({ id: refused, state: 'succeeded', result: { text: 'a\u0000b' }, workerPid: 1 }, 100);
    settler.add({ id: failed, state: 'failed', error: { name: 'Error', message: 'boom' }, workerPid: 1 }, 100);
    expect(await settler.drain(10_000)).toBe(true);

    const rows = await query<{ id: string; state: string; result: unknown; error: { code?: string; message: string } | null }>(
      `select id::text, state, result, error from "${schema}".tasks order by id`,
    );
    expect(rows).toEqual([
      { id: good, state: 'succeeded', result: { ok: true }, error: null },
      { id: refused, state: 'failed', result: null, error: expect.objectContaining({ code: 'OUTCOME_NOT_STORABLE' }) },
      { id: failed, state: 'failed', result: null, error: { name: 'Error', message: 'boom' } },
    ]);
    expect(rows[1]!.error!.message).toMatch(/^the task's outcome could not be recorded: unsupported Unicode escape sequence/);
    expect(reported.sort((a, b) => Number(a.id) - Number(b.id))).toEqual([
      { id: good, state: 'succeeded' },
      { id: refused, state: 'failed' },
      { id: failed, state: 'failed' },
    ]);
    expect(logged.filter((l) => l.event === 'outcome_not_storable').map((l) => l.taskId)).toEqual([refused]);
    expect(logged.filter((l) => l.event === 'settle_failed')).toEqual([]);
  });

  it('large results go to the database in statements of bounded size', async () => {
    const schema = schemaName();
    const db = await migrated(schema);
    const supervisorId = '00000000-0000-4000-8000-000000000003';
    const ids = await runningTasks(db, schema, supervisorId, 10);
    const log = pino({ level: 'silent' });
    // All ten wait together (as behind a slow write), 100,000 characters of result each, at most 250,000 a statement.
    const settler = new Settler(db, schema, supervisorId, log, () => {}, { maxLingerMs: 50, outstanding: () => 1, maxBatchChars: 250_000 });
    const text = 'x'.repeat(100_000 - 2);
    for (const id of ids) settler.add({ id, state: 'succeeded', result: text, resultSize: 100_000, workerPid: 1 }, 100);
    expect(await settler.drain(10_000)).toBe(true);
    const rows = await query<{ statements: number; succeeded: number }>(
      `select count(distinct finished_at)::int as statements, count(*) filter (where state = 'succeeded' and result = to_jsonb($1::text))::int as succeeded
         from "${schema}".tasks`,
      [text],
    );
    // Two results per statement (a third would pass 250,000): five statements, every result whole.
    expect(rows).toEqual([{ statements: 5, succeeded: 10 }]);
  });
});
