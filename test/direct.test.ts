/**
 * Direct submission: `Client.run()` and `prefork send --wait` hand a task to a supervisor on this host over its
 * Unix socket; it is inserted already claimed, run at once, and its outcome comes back on the socket once the
 * database recorded it. Whatever the socket cannot deliver falls back to the database.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { useClients } from './support/clients.js';
import { admin, databaseUrl, query, useTestSchema } from './support/database.js';
import { runCli, startWithFixtures as start, useProcessLeakGuard } from './support/processes.js';
import { insertTasks } from './support/tasks.js';
import { migrate } from '../src/db/migrate.js';
import { addSubmitted } from '../src/queue/add-submitted.js';
import { insertClaimed } from '../src/queue/add-claimed.js';
import { registerSupervisor } from '../src/queue/supervisors.js';
import type { ClaimedTask } from '../src/queue/claim-tasks.js';
import { DirectSubmissions } from '../src/primary/direct-submissions.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

const { client, closeLater } = useClients();

/**
 * Counts the `wake` notifications of a schema: every insert of a queued task sends one, and they arrive in
 * commit order. `exactlyOneMore()` inserts a queued task and waits for its wake: none other came in between, so
 * whatever committed before it woke nobody.
 */
async function countWakes(schema: string): Promise<{ count: () => number; exactlyOneMore: () => Promise<void> }> {
  const listener = new pg.Client({ connectionString: databaseUrl() });
  await listener.connect();
  closeLater({ close: () => listener.end() });
  let n = 0;
  listener.on('notification', () => (n += 1));
  await listener.query(`listen "${schema}:wake"`);
  return {
    count: () => n,
    exactlyOneMore: async () => {
      const before = n;
      await insertTasks(schema, 'nobody.runs.this', [{ marker: true }]);
      await waitFor(() => n > before);
      expect(n).toBe(before + 1);
    },
  };
}

async function socketPath(schema: string): Promise<string> {
  const [row] = await query<{ socket_path: string | null }>(`select socket_path from "${schema}".supervisors where state = 'running'`);
  expect(row?.socket_path).toMatch(/\.sock$/);
  return row!.socket_path!;
}

/**
 * A raw connection to a supervisor's socket: `send` writes one request line; `replies` collects every reply line,
 * parsed, with the time it arrived (`at`, performance.now()).
 */
async function rawSocket(path: string): Promise<{ send: (request: unknown) => void; end: () => void; replies: Reply[] }> {
  const socket = connect(path);
  const replies: Reply[] = [];
  let buffered = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      replies.push({ ...(JSON.parse(buffered.slice(0, nl)) as Omit<Reply, 'at'>), at: performance.now() });
      buffered = buffered.slice(nl + 1);
    }
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  return {
    send: (request) => socket.write(typeof request === 'string' ? request : `${JSON.stringify(request)}\n`),
    end: () => socket.end(),
    replies,
  };
}

interface Reply {
  op: string;
  ref: number;
  at: number;
  id?: string;
  task?: { id: string; status: string; result?: unknown };
  error?: { code: string; message: string };
}

describe('direct submission', () => {
  it('run() hands the task to the local supervisor: claimed in the insert, nobody woken, the outcome as stored', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2']);
    await sup.ready();
    const prefork = client(schema);
    const wakes = await countWakes(schema);

    for (let i = 0; i < 20; i++) {
      const task = await prefork.run('prefork.echo', { i }, { timeoutMs: 10_000 });
      expect(task).toMatchObject({ task: 'prefork.echo', status: 'succeeded', result: { i }, attempts: 1 });
      // Inserted and claimed by one statement: one transaction time for both.
      expect(task.startedAt).toBe(task.createdAt);
      expect(await prefork.get(task.id)).toEqual(task);
    }
    const failed = await prefork.run('fixture.fail', {}, { timeoutMs: 10_000 });
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, error: { message: 'the report could not be built' } });
    expect(await prefork.get(failed.id)).toEqual(failed);
    // The next queued insert's wake is the first: the direct inserts before it woke nobody.
    await wakes.exactlyOneMore();
    expect(wakes.count()).toBe(1);
    await sup.stop();
  });

  it('does not jump the queue: behind a due task of the same or higher priority it is queued, unless the supervisor could not claim that task', async () => {
    const schema = schemaName();
    const db = await admin();
    await migrate(db, schema);
    // The statement: a due task of priority 5 waits, and the supervisor does not know that nothing it could claim is due.
    await insertTasks(schema, 'nobody.runs.this', [{}], { priority: 5 });
    const insert = (priority: number, nothingDue: boolean) =>
      insertClaimed(db, schema, {
        name: 'prefork.echo', payload: {}, queue: 'default', priority, maxAttempts: null, key: null,
        supervisorId: randomUUID(), submission: randomUUID(), nothingDue,
      });
    expect((await insert(5, false)).state).toBe('queued');
    expect((await insert(4, false)).state).toBe('queued');
    expect((await insert(6, false)).state).toBe('running');
    expect((await insert(5, true)).state).toBe('running');
    await query(`delete from "${schema}".tasks where name = 'prefork.echo'`);

    // A supervisor whose workers do not offer the waiting task's name: once its dispatcher found nothing it could
    // claim, its direct submissions go straight to a worker again (they went through the queue for as long as
    // the task waited, before).
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const prefork = client(schema);
    await expect
      .poll(async () => {
        const r = await prefork.run('prefork.echo', { behind: true }, { priority: 5, timeoutMs: 10_000 });
        expect(r).toMatchObject({ status: 'succeeded', result: { behind: true } });
        return r.startedAt === r.createdAt;
      }, { timeout: 10_000 })
      .toBe(true);
    await sup.stop();
  });

  it('an insert whose sender hears of it first from a later commit skips its own WAL flush; every other insert is durable at its commit', async () => {
    const schema = schemaName();
    const db = await admin();
    await migrate(db, schema);
    const [{ setting }] = (await db.query<{ setting: string }>(`select current_setting('synchronous_commit') as setting`)).rows as [{ setting: string }];
    expect(setting).not.toBe('off');
    // The commit mode the insert leaves for its own transaction, read before that transaction ends.
    const commitMode = async (o: { flushWithOutcome: boolean; key?: string; priority?: number; nothingDue?: boolean }) => {
      await db.query('begin');
      try {
        const row = await insertClaimed(db, schema, {
          name: 'prefork.echo', payload: {}, queue: 'default', priority: o.priority ?? 0, maxAttempts: null, key: o.key ?? null,
          supervisorId: randomUUID(), submission: randomUUID(), nothingDue: o.nothingDue ?? true, flushWithOutcome: o.flushWithOutcome,
        });
        const { rows } = await db.query<{ mode: string }>(`select current_setting('synchronous_commit') as mode`);
        return `${row.state}${row.flushDeferred ? ' (flush deferred)' : ''}, commit ${rows[0]!.mode}`;
      } finally {
        await db.query('rollback');
      }
    };
    expect(await commitMode({ flushWithOutcome: true })).toBe('running (flush deferred), commit off');
    expect(await commitMode({ flushWithOutcome: false })).toBe(`running, commit ${setting}`);
    // A keyed send may be answered at once (deduplicated): always durable.
    expect(await commitMode({ flushWithOutcome: true, key: 'k' })).toBe(`running, commit ${setting}`);
    // Queued behind a due task: the sender is answered at once.
    await insertTasks(schema, 'nobody.runs.this', [{}], { priority: 5 });
    expect(await commitMode({ flushWithOutcome: true, priority: 5, nothingDue: false })).toBe(`queued, commit ${setting}`);
    // Transaction-local: the session's own setting is as it was.
    expect((await db.query(`select current_setting('synchronous_commit') as mode`)).rows).toEqual([{ mode: setting }]);
  });

  it('a held-back accepted goes out only after a durable commit sent after the insert; an outcome within the hold needs none', async () => {
    const schema = schemaName();
    const db = await admin();
    await migrate(db, schema);
    const supervisorId = randomUUID();
    await registerSupervisor(db, schema, { id: supervisorId, host: hostname(), pid: process.pid, pidScope: null });
    // The primary's side, in this process, on a session of its own whose statements are recorded as they return.
    const session = new pg.Client({ connectionString: databaseUrl() });
    await session.connect();
    closeLater({ close: () => session.end() });
    // Each statement as `insert, flush deferred`, `insert, durable` or `flush` (the commit that flushes the WAL).
    const statements: { what: string; doneAt: number }[] = [];
    const watched = {
      query: async (config: pg.QueryConfig | string, values?: unknown[]) => {
        const result = typeof config === 'string' ? await session.query(config, values) : await session.query(config);
        const text = typeof config === 'string' ? config : config.text;
        const what = text.includes('set heartbeat_at = heartbeat_at') ? 'flush' : typeof config !== 'string' && config.name?.startsWith('prefork_insert_claimed_') ? `insert, ${config.values?.[9] ? 'flush deferred' : 'durable'}` : text;
        statements.push({ what, doneAt: performance.now() });
        return result;
      },
    } as unknown as pg.Client;
    const flushes = () => statements.filter((s) => s.what === 'flush');
    const warnings: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
    const started: ClaimedTask[] = [];
    const direct = new DirectSubmissions({
      db: watched, schema, supervisorId, log,
      accepting: () => true, runsHere: () => true, nothingDue: () => true, maxAttempts: () => 1,
      runNow: (task) => started.push(task) > 0,
      release: async () => {},
      track: (promise) => void promise.catch(() => {}),
    });
    await direct.open();
    closeLater({ close: async () => direct.close() });
    const { send, end, replies } = await rawSocket(direct.socketPath!);
    closeLater({ close: async () => end() });
    const submit = (ref: number, deferAcceptMs?: number) => send({ op: 'submit', ref, submission: randomUUID(), name: 'prefork.echo', payload: { ref }, wait: true, deferAcceptMs });
    const of = (ref: number) => replies.filter((r) => r.ref === ref);

    // Still running when the 50 ms hold is up: `accepted` follows a commit of the supervisor's row that writes WAL.
    submit(1, 50);
    await waitFor(() => of(1).length > 0);
    expect(of(1)).toMatchObject([{ op: 'accepted', direct: true, id: started[0]!.id }]);
    expect(statements.map((s) => s.what)).toEqual(['insert, flush deferred', 'flush']);
    expect(of(1)[0]!.at).toBeGreaterThan(flushes()[0]!.doneAt);

    // Done within the hold: its result alone, and no commit besides its outcome's.
    submit(2, 1_000);
    await waitFor(() => started.length === 2);
    direct.onSettled([{ id: started[1]!.id, state: 'succeeded', result: { ok: 2 } }], new Date(), []);
    await waitFor(() => of(2).length > 0);
    expect(of(2)).toMatchObject([{ op: 'result', task: { id: started[1]!.id, status: 'succeeded', result: { ok: 2 } } }]);

    // No hold asked for (`send --wait`, which names the task at once): a durable insert, `accepted` at once.
    submit(3);
    await waitFor(() => of(3).length > 0);
    expect(of(3)).toMatchObject([{ op: 'accepted', direct: true, id: started[2]!.id }]);
    expect(statements.slice(2).map((s) => s.what)).toEqual(['insert, flush deferred', 'insert, durable']);

    // The commit cannot be made (the row it writes is gone): no `accepted`, a warning; the sender, unanswered,
    // resends through the database, where its submission id finds this task.
    await query(`delete from "${schema}".supervisors where id = $1`, [supervisorId]);
    submit(4, 20);
    await waitFor(() => warnings.length > 0);
    expect(warnings).toMatchObject([{ event: 'direct_accept_unconfirmed', taskId: started[3]!.id }]);
    expect(flushes()).toHaveLength(2);
    expect(of(4)).toEqual([]);
  });

  it("an outcome its sender hears on the socket goes without a done NOTIFY; a keyed task's, a queued task's and the waits of others by id still end", async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2']);
    await sup.ready();
    const prefork = client(schema);
    // Notifications arrive in commit order: once a later task's arrived, an earlier one's would have.
    const listener = new pg.Client({ connectionString: databaseUrl() });
    await listener.connect();
    closeLater({ close: () => listener.end() });
    const announced = new Set<string>();
    listener.on('notification', (n) => n.payload?.split(',').forEach((id) => announced.add(id)));
    await listener.query(`listen "${schema}:done"`);

    const direct = [];
    for (let i = 0; i < 5; i++) direct.push(await prefork.run('prefork.echo', { i }, { timeoutMs: 10_000 }));
    direct.push(await prefork.run('fixture.fail', {}, { timeoutMs: 10_000 }));
    expect(direct.map((t) => t.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed']);
    // With a key, another send of the key may be waiting for it through the database: announced.
    const keyed = await prefork.run('prefork.echo', { keyed: true }, { key: 'k1', timeoutMs: 10_000 });
    // Through the database (send + result), as any task a sender waits for there.
    const queued = await prefork.result(await prefork.send('prefork.echo', { queued: true }), { timeoutMs: 10_000 });
    expect([keyed.status, queued.status]).toEqual(['succeeded', 'succeeded']);
    await waitFor(() => announced.has(queued.id));
    expect(announced.has(keyed.id)).toBe(true);
    expect(direct.filter((t) => announced.has(t.id))).toEqual([]);

    // Someone else waiting for a directly submitted task by its id still sees it end (its wait reads the task again).
    const running = prefork.run('prefork.sleep', { ms: 400 }, { timeoutMs: 10_000 });
    const [row] = await waitForRows<{ id: string }>(`select id::text from "${schema}".tasks where name = 'prefork.sleep' and state = 'running'`);
    const other = client(schema);
    const [byOther, bySender] = await Promise.all([other.result(row!.id, { timeoutMs: 10_000 }), running]);
    expect(bySender).toMatchObject({ id: row!.id, status: 'succeeded' });
    expect(byOther).toEqual(bySender);
    await sup.stop();
  });

  it('a retried task, and one given a key, still end with their final state; a run() of another name with a held key is refused', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2']);
    await sup.ready();
    const prefork = client(schema);
    const retried = await prefork.run('fixture.failOnce', {}, { timeoutMs: 10_000 });
    expect(retried).toMatchObject({ status: 'succeeded', attempts: 2, result: { attempt: 2 } });

    const running = prefork.run('prefork.sleep', { ms: 300 }, { key: 'only-one', timeoutMs: 10_000 });
    await waitForRows(`select 1 from "${schema}".tasks where key = 'only-one' and state = 'running'`);
    const [first, second] = await Promise.all([running, prefork.run('prefork.sleep', { ms: 300 }, { key: 'only-one', timeoutMs: 10_000 })]);
    expect(second.id).toBe(first.id);
    expect(first.status).toBe('succeeded');
    expect(await query(`select count(*)::int as n from "${schema}".tasks where key = 'only-one'`)).toEqual([{ n: 1 }]);

    // A run() of another name with a key a running task holds: refused, not answered with that task's outcome.
    const holder = prefork.run('prefork.sleep', { ms: 1_000 }, { key: 'held', timeoutMs: 10_000 });
    const [held] = await waitForRows<{ id: string }>(`select id::text from "${schema}".tasks where key = 'held' and state = 'running'`);
    await expect(prefork.run('prefork.echo', { x: 1 }, { key: 'held', timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'KEY_IN_USE',
      message: `the key "held" is held by task ${held!.id}, a running prefork.sleep task: run() of prefork.echo would return that task's outcome`,
    });
    expect(await holder).toMatchObject({ id: held!.id, status: 'succeeded' });
    expect(await query(`select count(*)::int as n from "${schema}".tasks where key = 'held'`)).toEqual([{ n: 1 }]);
    await sup.stop();
  });

  it('a submission sent again through the database finds the task its lost answer was about, never making a second', async () => {
    const schema = schemaName();
    const db = await admin();
    await migrate(db, schema);
    // The supervisor committed the task and died before it answered: the sender sends it again.
    const submission = randomUUID();
    const made = await insertClaimed(db, schema, {
      name: 'prefork.echo', payload: { n: 1 }, queue: 'default', priority: 0, maxAttempts: null, key: null,
      supervisorId: randomUUID(), submission,
    });
    expect(made.state).toBe('running');
    expect(await addSubmitted(db, schema, submission, 'prefork.echo', { n: 1 })).toEqual({ id: made.id, deduplicated: false });
    // A submission that never arrived is inserted once, however often it is sent.
    const fresh = randomUUID();
    const first = await addSubmitted(db, schema, fresh, 'prefork.echo', { n: 2 });
    expect(await addSubmitted(db, schema, fresh, 'prefork.echo', { n: 2 })).toEqual(first);
    // Sent at once from two connections, it still makes one task.
    const other = new pg.Client({ connectionString: databaseUrl() });
    await other.connect();
    closeLater({ close: () => other.end() });
    const raced = randomUUID();
    const [a, b] = await Promise.all([addSubmitted(db, schema, raced, 'prefork.echo', {}), addSubmitted(other, schema, raced, 'prefork.echo', {})]);
    expect(a.id).toBe(b.id);
    expect(await query(`select count(*)::int as n from "${schema}".tasks`)).toEqual([{ n: 3 }]);
    // With a key already held by a queued task: that task.
    const keyed = await addSubmitted(db, schema, randomUUID(), 'prefork.echo', {}, { key: 'k' });
    expect(await addSubmitted(db, schema, randomUUID(), 'prefork.echo', {}, { key: 'k' })).toEqual({ id: keyed.id, deduplicated: true });
  });

  it('the primary killed under a directly submitted task: run() resolves once another supervisor recovered and ran it', async () => {
    const schema = schemaName();
    const first = start(schema, ['--workers', '1']);
    await first.ready();
    const prefork = client(schema);
    const pending = prefork.run('fixture.dbSleep', { seconds: 1 }, { timeoutMs: 60_000 });
    const [running] = await waitForRows<{ id: string }>(`select id::text from "${schema}".tasks where state = 'running'`);
    first.kill('SIGKILL');
    await first.exited;

    const second = start(schema, ['--workers', '1']);
    await second.ready();
    const task = await pending;
    expect(task).toMatchObject({ id: running!.id, status: 'succeeded', attempts: 2, result: { slept: 1, attempt: 2 } });
    await second.stop();
  });

  it('a frozen supervisor leaves no sender hanging: before it answers, the task goes through the database once; after, the outcome is read there', async () => {
    const schema = schemaName();
    const a = start(schema, ['--workers', '1', '--lease', '2000']);
    await a.ready();
    const prefork = client(schema);
    // The client's socket is now A's.
    expect((await prefork.run('prefork.echo', { warm: true }, { timeoutMs: 10_000 })).startedAt).toBeDefined();

    // Frozen before it reads the submission: no answer within the accept timeout, the same submission goes
    // through the database and B runs it; when A thaws, its own insert of that submission is refused.
    a.kill('SIGSTOP');
    const b = start(schema, ['--workers', '1', '--lease', '2000']);
    try {
      await b.ready();
      // No timeoutMs: without a way out, the sender would wait for the frozen supervisor for ever.
      const unanswered = await notHung(prefork.run('prefork.echo', { frozen: 'before' }));
      expect(unanswered).toMatchObject({ status: 'succeeded', result: { frozen: 'before' } });
      a.kill('SIGCONT');
      // A reads its socket in order: once it has answered the next submission, it has handled the old one.
      expect(await prefork.run('prefork.echo', { warm: 'again' }, { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded' });
      expect(await query(`select count(*)::int as n from "${schema}".tasks where payload = '{"frozen": "before"}'`)).toEqual([{ n: 1 }]);

      // Frozen after accepting: its lease runs out, B takes the task over, and the sender reads the outcome.
      const pending = notHung(prefork.run('prefork.sleep', { ms: 300 }));
      await waitForRows(`select 1 from "${schema}".tasks where name = 'prefork.sleep' and state = 'running'`);
      a.kill('SIGSTOP');
      const task = await pending;
      expect(task).toMatchObject({ status: 'succeeded', attempts: 2 });
    } finally {
      a.kill('SIGCONT');
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a graceful stop lets a directly submitted task finish and delivers its outcome', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const prefork = client(schema);
    const pending = prefork.run('prefork.sleep', { ms: 800 }, { timeoutMs: 20_000 });
    await waitForRows(`select 1 from "${schema}".tasks where state = 'running'`);
    const stopped = sup.stop();
    expect(await pending).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect((await stopped).code).toBe(0);
  });

  it('answers a bad line with a one-line refusal and keeps serving the connection', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const { send, end, replies } = await rawSocket(await socketPath(schema));
    send('not json\n');
    send({ op: 'submit', ref: 6, name: 'prefork.echo', payload: {}, wait: true });
    send({ op: 'submit', ref: 7, submission: randomUUID(), name: 'prefork.echo', payload: {}, wait: 'yes' });
    send({ op: 'submit', ref: 9, submission: randomUUID(), name: 'prefork.echo', payload: { text: 'a\u0000b' }, wait: true });
    send({ op: 'submit', ref: 8, submission: randomUUID(), name: 'prefork.echo', payload: { ok: 1 }, wait: true });
    await waitFor(() => replies.some((r) => r.op === 'result'));
    end();
    const withoutTimes = replies.map(({ at: _at, ...reply }) => reply);
    expect(withoutTimes[0]).toEqual({ op: 'refused', ref: 0, error: { code: 'BAD_REQUEST', message: 'not JSON' } });
    expect(withoutTimes[1]).toEqual({ op: 'refused', ref: 6, error: { code: 'BAD_REQUEST', message: 'submission must be a UUID' } });
    expect(withoutTimes[2]).toEqual({ op: 'refused', ref: 7, error: { code: 'BAD_REQUEST', message: 'wait must be true or false' } });
    expect(withoutTimes[3]).toEqual({
      op: 'refused',
      ref: 9,
      error: { code: 'BAD_REQUEST', message: 'the request contains a NUL character (\\u0000), which PostgreSQL cannot store' },
    });
    expect(withoutTimes[4]).toMatchObject({ op: 'accepted', ref: 8, direct: true, deduplicated: false });
    expect(withoutTimes[5]).toMatchObject({ op: 'result', ref: 8, task: { status: 'succeeded', result: { ok: 1 } } });
    // Nothing was inserted for the refused lines.
    expect(await query(`select count(*)::int as n from "${schema}".tasks`)).toEqual([{ n: 1 }]);
    await sup.stop();
  });

  it('with deferAcceptMs, a task done within it is answered by its result alone; a longer one is accepted when that time is up', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1', '--concurrency', '2']);
    await sup.ready();
    const { send, end, replies } = await rawSocket(await socketPath(schema));
    const submit = (ref: number, name: string, payload: unknown, deferAcceptMs: unknown) =>
      send({ op: 'submit', ref, submission: randomUUID(), name, payload, wait: true, deferAcceptMs });
    const sentAt = performance.now();
    // The sleep's accepted is held back 100 ms, then sent: the task is still running.
    submit(1, 'prefork.sleep', { ms: 1_500 }, 100);
    // An echo is done well within 10 s: its result is the only reply.
    submit(2, 'prefork.echo', { n: 2 }, 10_000);
    submit(3, 'prefork.echo', { n: 3 }, -1);
    await waitFor(() => replies.filter((r) => r.op === 'result').length === 2);
    end();
    const of = (ref: number) => replies.filter((r) => r.ref === ref).map((r) => r.op);
    expect(of(1)).toEqual(['accepted', 'result']);
    expect(of(2)).toEqual(['result']);
    expect(of(3)).toEqual(['refused']);
    expect(replies.find((r) => r.ref === 3)).toMatchObject({ error: { code: 'BAD_REQUEST', message: 'deferAcceptMs must be an integer from 0 to 60000' } });
    const accepted = replies.find((r) => r.ref === 1 && r.op === 'accepted')!;
    const sleepResult = replies.find((r) => r.ref === 1 && r.op === 'result')!;
    expect(accepted.at - sentAt).toBeGreaterThanOrEqual(95);
    expect(sleepResult.at).toBeGreaterThan(accepted.at);
    expect(sleepResult.task).toMatchObject({ id: accepted.id, status: 'succeeded' });
    expect(replies.find((r) => r.ref === 2)!.task).toMatchObject({ status: 'succeeded', result: { n: 2 } });
    expect(await query(`select state, count(*)::int as n from "${schema}".tasks group by state`)).toEqual([{ state: 'succeeded', n: 2 }]);
    await sup.stop();
  });

  it('run() given up while its accepted is held back (a signal, a timeout shorter than the hold): it says so, and the task goes on once', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1', '--concurrency', '2']);
    await sup.ready();
    const prefork = client(schema);
    await prefork.run('prefork.echo', {}, { timeoutMs: 10_000 }); // the socket is open: the next runs go through it
    const ac = new AbortController();
    const aborted = prefork.run('prefork.sleep', { ms: 1_500, n: 1 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(prefork.run('prefork.sleep', { ms: 1_500, n: 2 }, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    // Both were handed over before the caller gave up: each runs to its end, once.
    await waitForRows(`select 1 from "${schema}".tasks where name = 'prefork.sleep' and state = 'succeeded' having count(*) = 2`);
    expect(await query(`select (payload->>'n')::int as n, state, attempts from "${schema}".tasks where name = 'prefork.sleep' order by 1`)).toEqual([
      { n: 1, state: 'succeeded', attempts: 1 },
      { n: 2, state: 'succeeded', attempts: 1 },
    ]);
    await sup.stop();
  });

  it('prefork send --wait goes through the socket, and through the database when no supervisor runs here', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const direct = await runCli(['send', 'prefork.echo', '{"via":"socket"}', '--wait', '--json'], { schema });
    expect(direct.code).toBe(0);
    const view = JSON.parse(direct.stdout) as { status: string; result: unknown; startedAt: string; createdAt: string };
    expect(view).toMatchObject({ status: 'succeeded', result: { via: 'socket' } });
    expect(view.startedAt).toBe(view.createdAt);
    const failed = await runCli(['send', 'fixture.fail', '--wait'], { schema });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/failed after 1 attempt: Error: the report could not be built/);
    await sup.stop();

    // No supervisor: the task is queued, and the wait times out (exit 124) as before.
    const queued = await runCli(['send', 'prefork.echo', '{}', '--wait', '--timeout', '300'], { schema });
    expect(queued.code).toBe(124);
    expect(await query(`select state from "${schema}".tasks where name = 'prefork.echo' and payload = '{}'`)).toEqual([{ state: 'queued' }]);
  });
});

/** The promise's value, or a failure when it is still pending after 20 s (the sender was left hanging). */
async function notHung<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('still waiting after 20 s')), 20_000);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** For a state with no event to await: polled. */
async function waitFor(check: () => boolean): Promise<void> {
  await expect.poll(check, { timeout: 10_000, interval: 10 }).toBe(true);
}

/** The rows of `sql` once there are any (a row's state has no event to await: polled). */
async function waitForRows<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
  let rows: R[] = [];
  await expect.poll(async () => (rows = await query<R>(sql)).length, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
  return rows;
}
