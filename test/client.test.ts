/** The queue for applications: the client API, transactional enqueue, scheduling, keys, cancel, many supervisors. */
import { Kysely, PostgresDialect } from 'kysely';
import { getEventListeners } from 'node:events';
import net from 'node:net';
import pg from 'pg';
import { classifyDatabaseError, Client, PreforkError } from '../src/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { databaseUrl, query, taskConnections, useTestSchema } from './support/database.js';
import { runCli, startWithFixtures as start, useProcessLeakGuard } from './support/processes.js';
import { countByState, executionLog, waitForFinal } from './support/tasks.js';
import { useClients } from './support/clients.js';
import { TcpProxy } from './support/tcp-proxy.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

const { client, closeLater } = useClients();

describe('Client', () => {
  it('sends, waits for the result, and gets a task', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '2']);
    await sup.ready();
    const prefork = client(schema);
    const id = await prefork.send('prefork.echo', { userId: 7 });
    const done = await prefork.result(id, { timeoutMs: 10_000 });
    expect(done).toMatchObject({ id, task: 'prefork.echo', status: 'succeeded', result: { userId: 7 }, attempts: 1 });
    expect(await prefork.get(id)).toEqual(done);
    expect(await prefork.get('999999999')).toBeNull();
    const failed = await prefork.result(await prefork.send('fixture.fail'), { timeoutMs: 10_000 });
    expect(failed).toMatchObject({ status: 'failed', error: { message: 'the report could not be built' } });
    const slow = await prefork.send('prefork.sleep', { ms: 5_000 });
    await expect(prefork.result(slow, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await prefork.cancel(slow)).toBe('cancelling');
    expect(await prefork.result(slow, { timeoutMs: 5_000 })).toMatchObject({ status: 'cancelled' });
    await sup.stop();
  });

  it('enqueues inside the application transaction: gone on rollback, run on commit (pg, Kysely and SQL)', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const prefork = client(schema);
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
    const db = new Kysely({ dialect: new PostgresDialect({ pool }) });
    closeLater({ close: () => db.destroy() });

    const pgClient = await pool.connect();
    await pgClient.query('begin');
    await prefork.send('prefork.echo', { via: 'pg', rolledBack: true }, { db: pgClient });
    await pgClient.query('rollback');
    await pgClient.query('begin');
    const committedPg = await prefork.send('prefork.echo', { via: 'pg' }, { db: pgClient });
    await pgClient.query('commit');
    pgClient.release();

    await expect(
      db.transaction().execute(async (trx) => {
        await prefork.send('prefork.echo', { via: 'kysely', rolledBack: true }, { db: trx });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const committedKysely = await db.transaction().execute((trx) => prefork.send('prefork.echo', { via: 'kysely' }, { db: trx }));

    await query('begin');
    await query(`select "${schema}".add_task('prefork.echo', '{"via":"sql","rolledBack":true}')`);
    await query('rollback');
    const [{ id: committedSql }] = (await query<{ id: string }>(`select "${schema}".add_task('prefork.echo', '{"via":"sql"}') as id`)) as [{ id: string }];

    for (const id of [committedPg, committedKysely, committedSql]) {
      expect((await prefork.result(id, { timeoutMs: 10_000 })).status).toBe('succeeded');
    }
    const rows = await query<{ payload: { via: string; rolledBack?: boolean } }>(`select payload from "${schema}".tasks order by id`);
    expect(rows.map((r) => r.payload)).toEqual([{ via: 'pg' }, { via: 'kysely' }, { via: 'sql' }]);
    await sup.stop();
  });

  it('honours delay and priority, deduplicates by key, and cancels queued and running tasks', async () => {
    const schema = schemaName();
    const prefork = client(schema);
    // Before any supervisor: priorities decide the order on a single worker.
    const low = await prefork.send('prefork.echo', { p: 'low' }, { priority: 1 });
    const high = await prefork.send('prefork.echo', { p: 'high' }, { priority: 9 });
    const mid = await prefork.send('prefork.echo', { p: 'mid' }, { priority: 5 });
    const delayed = await prefork.send('prefork.echo', { p: 'delayed' }, { delayMs: 1_500 });
    const keyed = await prefork.send('prefork.echo', { p: 'keyed' }, { key: 'user-7', priority: -1 });
    expect(await prefork.send('prefork.echo', { p: 'keyed again' }, { key: 'user-7' })).toBe(keyed);
    // run() of another name with that key would return the echo's outcome as its own: refused, nothing added.
    await expect(prefork.run('prefork.sleep', { ms: 1 }, { key: 'user-7', timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'KEY_IN_USE',
      message: `the key "user-7" is held by task ${keyed}, a queued prefork.echo task: run() of prefork.sleep would return that task's outcome`,
    });
    expect(await query(`select count(*)::int as n from "${schema}".tasks where key = 'user-7'`)).toEqual([{ n: 1 }]);
    const cancelled = await prefork.send('prefork.echo', { p: 'cancelled' });
    expect(await prefork.cancel(cancelled)).toBe('cancelled');

    const sup = start(schema, ['--workers', '1', '--prefetch', '0']);
    await sup.ready();
    await waitForFinal(schema, 6);
    const order = await query<{ id: string }>(`select id from "${schema}".tasks where state = 'succeeded' and id <> $1 order by started_at, id`, [delayed]);
    expect(order.map((r) => r.id)).toEqual([high, mid, low, keyed]);
    const [d] = await query<{ waited_ms: number }>(`select extract(epoch from started_at - created_at) * 1000 as waited_ms from "${schema}".tasks where id = $1`, [delayed]);
    expect(Number(d!.waited_ms)).toBeGreaterThanOrEqual(1_450);
    expect((await prefork.get(cancelled))?.status).toBe('cancelled');
    // The key is free again once its task finished.
    expect(await prefork.send('prefork.echo', {}, { key: 'user-7' })).not.toBe(keyed);

    const running = await prefork.send('fixture.waitForAbort');
    await expect.poll(async () => (await prefork.get(running))?.status).toBe('running');
    expect(await prefork.cancel(running)).toBe('cancelling');
    expect(await prefork.result(running, { timeoutMs: 10_000 })).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED' } });
    expect(await prefork.cancel(running)).toBe('finished');

    // One waiting on the database cannot see its signal: its query is cancelled too (else it would sleep 30 s).
    const querying = await prefork.send('fixture.dbSleep', { seconds: 30 }, { maxAttempts: 1 });
    await expect.poll(async () => (await taskConnections(schema)).length).toBe(1);
    expect(await prefork.cancel(querying)).toBe('cancelling');
    expect(await prefork.result(querying, { timeoutMs: 10_000 })).toMatchObject({ status: 'cancelled' });
    await sup.stop();
  });
});

/** Two supervisors with a short lease, a file that records executions, and a client. */
async function twoSupervisors(schema: string) {
  const a = start(schema, ['--workers', '2', '--lease', '2000']);
  const b = start(schema, ['--workers', '2', '--lease', '2000']);
  await Promise.all([a.ready(), b.ready()]);
  return { a, b, prefork: client(schema), executions: executionLog() };
}

describe('Client misuse', () => {
  it("close() ends the waits in progress before it gives back the application's pool connection; calls after it are refused", async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    // The application's pool: the client's queries use it (its LISTEN has a connection of its own).
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
    closeLater({ close: () => pool.end() });
    const prefork = new Client({ pool, schema, direct: false });
    const slow = await prefork.send('prefork.sleep', { ms: 4_000 });
    const waiting = prefork.result(slow);
    const running = prefork.run('prefork.sleep', { ms: 4_000 });
    await new Promise((r) => setTimeout(r, 300));
    const outcomes = Promise.allSettled([waiting, running]);
    const closedAt = Date.now();
    await prefork.close();
    expect(await outcomes).toEqual([
      { status: 'rejected', reason: expect.objectContaining({ code: 'CLIENT_CLOSED' }) },
      { status: 'rejected', reason: expect.objectContaining({ code: 'CLIENT_CLOSED' }) },
    ]);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    // Both connections are the application's again: transactions of its own are not disturbed (the client's
    // wait went on polling on the connection it had given back, inside them).
    const mine = await Promise.all([pool.connect(), pool.connect()]);
    try {
      for (const c of mine) await c.query('begin; select 1');
      await new Promise((r) => setTimeout(r, 1_500));
      for (const c of mine) await c.query('commit');
    } finally {
      for (const c of mine) c.release();
    }
    for (const call of [() => prefork.send('prefork.echo'), () => prefork.get(slow), () => prefork.result(slow), () => prefork.list()]) {
      await expect(call()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    }
    await sup.stop();
  });

  it("on the application's pool of one connection: the client's LISTEN is a connection of its own, so sends, the application's queries and close() go on", async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
    closeLater({ close: () => pool.end() });
    const prefork = new Client({ pool, schema, direct: false });
    expect(await prefork.result(await prefork.send('prefork.echo', { n: 1 }), { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded' });
    expect(await prefork.send('prefork.echo', { n: 2 })).toMatch(/^\d+$/);
    expect((await pool.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    expect(await query(`select count(*)::int as n from pg_stat_activity where application_name = 'prefork client (listen)' and query like $1`, [`%${schema}%`])).toEqual([{ n: 1 }]);
    await prefork.close();
    expect(await query(`select count(*)::int as n from pg_stat_activity where application_name = 'prefork client (listen)' and query like $1`, [`%${schema}%`])).toEqual([{ n: 0 }]);
    await sup.stop();
  });

  it('its listening connection ended by the server (a restart, a failover, idle_session_timeout): waits go on, on a new one, and nothing crashes', async () => {
    const schema = schemaName();
    const sup = start(schema, ['--workers', '1']);
    await sup.ready();
    const prefork = client(schema);
    const terminate = () =>
      query<{ n: number }>(
        `select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity where application_name = 'prefork client (listen)' and query like $1`,
        [`%${schema}%`],
      );
    // Under a wait: the task goes on, and its result still comes.
    const slow = await prefork.send('prefork.sleep', { ms: 1_500 });
    const waiting = prefork.result(slow, { timeoutMs: 20_000 });
    await expect.poll(terminate, { timeout: 5_000 }).toEqual([{ n: 1 }]);
    expect(await waiting).toMatchObject({ id: slow, status: 'succeeded' });
    // Between waits: the next one opens another.
    await expect.poll(terminate, { timeout: 5_000 }).toEqual([{ n: 1 }]);
    const id = await prefork.send('prefork.echo', { again: 1 });
    expect(await prefork.result(id, { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded', result: { again: 1 } });
    await sup.stop();
  });

  it('a wait outlasts an outage longer than its connects retry: it tries again every second until the database is back, then sees the outcome; past timeoutMs it says the task did not finish', async () => {
    await using proxy = await TcpProxy.start(databaseUrl());
    const schema = schemaName();
    // Connects give up after one retry (within 0.1 s): the wait itself has to go on.
    const prefork = new Client({ connectionString: proxy.url(), schema, direct: false, connectRetry: { retries: 1, maxElapsedMs: 100 } });
    closeLater(prefork);
    const id = await prefork.send('nobody.runs', { n: 1 });
    const waiting = prefork.result(id, { timeoutMs: 20_000 });
    const settled = waiting.then(() => 'settled', () => 'settled');
    await expect.poll(() => query(`select 1 from pg_stat_activity where application_name = 'prefork client (listen)' and query like $1`, [`%${schema}%`])).toHaveLength(1);
    const refused = proxy.refuse();
    proxy.cutAll(); // the listening connection and the pool's idle one, which refuse() would otherwise wait for
    await refused;
    // A client that has not reached the database yet: its first step (the schema's migration) waits as well.
    const fresh = new Client({ connectionString: proxy.url(), schema, direct: false, connectRetry: { retries: 1, maxElapsedMs: 100 } });
    closeLater(fresh);
    const freshWaiting = fresh.result(id, { timeoutMs: 20_000 });
    const freshSettled = freshWaiting.then(() => 'settled', () => 'settled');
    // The task ends while the client cannot reach the database (no supervisor here: written as one would).
    await query(`update "${schema}".tasks set state = 'succeeded', result = '{"ok": true}', attempts = 1, started_at = now(), finished_at = now() where id = $1`, [id]);
    // Several of the connect's budgets pass: the wait is still on.
    const stillWaiting = await Promise.race([settled, freshSettled, new Promise((resolve) => setTimeout(() => resolve('waiting'), 2_500))]);
    expect(stillWaiting).toBe('waiting');
    await proxy.restore();
    expect(await waiting).toMatchObject({ id, status: 'succeeded', result: { ok: true } });
    expect(await freshWaiting).toMatchObject({ id, status: 'succeeded', result: { ok: true } });

    // Down for longer than the wait's own timeout: TIMEOUT, which does not blame the database for a task that may be running.
    const other = await prefork.send('nobody.runs', { n: 2 });
    const refusedAgain = proxy.refuse();
    proxy.cutAll();
    await refusedAgain;
    await expect(prefork.result(other, { timeoutMs: 1_500 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: `task ${other} did not reach a final state within 1500 ms`,
    });
    await proxy.restore();
  });

  it("send({ db }) in the application's transaction as the schema's first word: the queue is made first, on a connection of the client's own", async () => {
    const schema = schemaName();
    // The application's transaction holds the only connection of its pool.
    const pool = new pg.Pool({ connectionString: databaseUrl(), max: 1 });
    closeLater({ close: () => pool.end() });
    const prefork = new Client({ pool, schema, direct: false });
    closeLater(prefork);
    const app = await pool.connect();
    try {
      await app.query('begin');
      await prefork.send('prefork.echo', { n: 1 }, { db: app });
      await prefork.sendMany([{ task: 'prefork.echo', payload: { n: 2 } }], { db: app });
      await app.query('commit');
    } finally {
      app.release();
    }
    expect(await query(`select payload from "${schema}".tasks order by id`)).toEqual([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
  });

  it('refuses what it would ignore or misread, and sends nothing for a signal aborted already', async () => {
    const schema = schemaName();
    const prefork = client(schema);
    const refused = async (call: () => Promise<unknown>, message: RegExp) => expect(call()).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(message) });
    // A typo in an option is not a default.
    await refused(() => prefork.send('prefork.echo', {}, { delay: 60_000 } as never), /^unknown option "delay" \(options: db, queue, priority, runAt, delayMs, maxAttempts, key\)$/);
    await refused(() => prefork.list({ state: ['failed'] } as never), /^unknown option "state"/);
    await refused(() => prefork.sendMany([{ task: 'prefork.echo', options: { key: 'k' } }] as never), /^task 1: key is not supported by sendMany/);
    await refused(() => prefork.sendMany([{ task: 'prefork.echo' }, null] as never), /^task 2: must be an object/);
    await refused(() => prefork.send('prefork.echo', {}, 5 as never), /^options must be an object \(got 5\)$/);
    await refused(() => prefork.send('prefork.echo', {}, { db: {} } as never), /^db must be a pg client or pool/);
    await refused(() => prefork.send('prefork.echo', {}, { runAt: new Date('-010000-01-01') }), /^runAt must be a valid Date from 4713 BC on/);
    await refused(() => prefork.send('prefork.echo', {}, { key: 'k'.repeat(1_001) }), /^key must be at most 1000 bytes/);
    expect(() => new Client({ connectionString: 'host=127.0.0.1 dbname=test' })).toThrow(/^connectionString host=127\.0\.0\.1 dbname=test: it is not a PostgreSQL URL/);
    expect(() => new Client(null as never)).toThrow(/needs an options object/);
    expect(() => new Client({ pool: {} as never })).toThrow(/^pool must be a pg\.Pool$/);
    expect(() => new Client({ connectionString: databaseUrl(), connectRetry: { retries: -1 } })).toThrow(/^connectRetry\.retries must be a whole number of 0 or more$/);
    expect(() => new Client({ connectionString: databaseUrl(), connectRetry: { tries: 3 } as never })).toThrow(/^connectRetry: unknown option "tries"/);
    expect(() => new Client({ connectionString: databaseUrl(), connectRetry: true as never })).toThrow(/^connectRetry must be false or \{ retries, maxElapsedMs \}$/);
    // 'no' would have left direct submission on; a pool beside a connection string would have won in silence.
    expect(() => new Client({ connectionString: databaseUrl(), direct: 'no' as never })).toThrow(/^direct must be true or false \(got "no"\)$/);
    expect(() => new Client({ connectionString: databaseUrl(), pool: new pg.Pool() })).toThrow(/^give connectionString or pool, not both$/);
    // A name PostgreSQL cannot hold is refused, not sent.
    await refused(() => prefork.pause('a\u0000b'), /^the task name contains a NUL character/);
    await refused(() => prefork.resume('a\u0000b'), /^the task name contains a NUL character/);
    await refused(() => prefork.list({ name: 'a\u0000b' }), /^name contains a NUL character/);
    await refused(() => prefork.list({ queue: 'a\u0000b' }), /^queue contains a NUL character/);
    // null options are no options (the types say so too).
    expect(await prefork.send('prefork.echo', { n: 1 }, null)).toMatch(/^\d+$/);
    expect((await prefork.list(null)).tasks).toHaveLength(1);
    // Aborted before the call: nothing is sent.
    const aborted = new AbortController();
    aborted.abort();
    await expect(prefork.run('prefork.echo', { n: 2 }, { signal: aborted.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await query(`select count(*)::int as n from "${schema}".tasks`)).toEqual([{ n: 1 }]);
  });

  it('a long-lived client keeps no listener on the caller\'s signal once its calls end', async () => {
    const schema = schemaName();
    const prefork = client(schema);
    const id = await prefork.send('prefork.echo', {});
    const caller = new AbortController();
    for (let i = 0; i < 20; i++) {
      await expect(prefork.result(id, { timeoutMs: 1, signal: caller.signal })).rejects.toMatchObject({ code: 'TIMEOUT' });
    }
    // Each call listened to it while it ran (one listener per call stayed: a leak, and Node's warning after 10).
    expect(getEventListeners(caller.signal, 'abort')).toEqual([]);
  });

  it('many calls at once on one client raise no warning in the application: the close signal is not shared', async () => {
    const schema = schemaName();
    const prefork = client(schema);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const ids = await Promise.all(Array.from({ length: 30 }, (_, n) => prefork.send('prefork.echo', { n })));
      await Promise.all(ids.map((id) => expect(prefork.result(id, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' })));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('a database it cannot reach or use rejects with DATABASE_UNREACHABLE, without the password, pg\'s error its cause; back again, calls go on', async () => {
    const refusing = net.createServer();
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const closedPort = (refusing.address() as net.AddressInfo).port;
    await new Promise((resolve) => refusing.close(resolve));
    const cases: [string, RegExp, string][] = [
      [`postgres://postgres:hunter2@127.0.0.1:${closedPort}/test`, /^cannot use the database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/test: connect ECONNREFUSED/, 'ECONNREFUSED'],
      [databaseUrl().replace(/\/[^/?]*(\?|$)/, '/prefork_no_such_db$1'), /^cannot use the database at .*: database "prefork_no_such_db" does not exist$/, '3D000'],
    ];
    for (const [url, message, code] of cases) {
      const prefork = new Client({ connectionString: url, schema: schemaName(), direct: false, connectRetry: false });
      try {
        const error = await prefork.send('prefork.echo', {}).catch((e: unknown) => e as PreforkError);
        expect(error).toBeInstanceOf(PreforkError);
        expect(error).toMatchObject({ code: 'DATABASE_UNREACHABLE', cause: expect.objectContaining({ code }) });
        expect((error as Error).message).toMatch(message);
        expect((error as Error).message).not.toContain('gave up');
        expect((error as Error).message).not.toContain('hunter2');
        // Classified as pg's error is: a refused connect is worth another try, an unknown database is not.
        expect(classifyDatabaseError(error).transient).toBe(code === 'ECONNREFUSED');
      } finally {
        await prefork.close();
      }
    }

    // Reached once, then an outage: a call that needs a new connection says so the same way; it ends, calls go on.
    // sslmode=require against a server without SSL: pg's error has no code, and is still the setup's, not a bug's.
    const [setting] = await query<{ ssl: string }>('show ssl');
    if (setting?.ssl === 'off' && !databaseUrl().includes('host=/')) {
      const url = `${databaseUrl()}${databaseUrl().includes('?') ? '&' : '?'}sslmode=require`;
      const prefork = new Client({ connectionString: url, schema: schemaName(), direct: false, connectRetry: false });
      await expect(prefork.send('prefork.echo', {})).rejects.toMatchObject({
        code: 'DATABASE_UNREACHABLE',
        message: expect.stringMatching(/^cannot use the database at .*: The server does not support SSL connections$/),
      });
      await prefork.close();
    }

    await using proxy = await TcpProxy.start(databaseUrl());
    const schema = schemaName();
    const prefork = new Client({ connectionString: proxy.url({ password: 'hunter2' }), schema, direct: false, connectRetry: false });
    try {
      const id = await prefork.send('prefork.echo', { n: 1 });
      const refused = proxy.refuse();
      proxy.cutAll();
      await refused;
      const error = await prefork.get(id).catch((e: unknown) => e as PreforkError);
      expect(error).toMatchObject({ code: 'DATABASE_UNREACHABLE', message: expect.stringMatching(/^cannot reach the database \((connection terminated unexpectedly|connection refused|connection reset)\): /) });
      expect((error as Error).message).not.toContain('hunter2');
      expect(classifyDatabaseError(error)).toMatchObject({ transient: true, category: 'connection' });
      await proxy.restore();
      expect(await prefork.get(id)).toMatchObject({ id, status: 'queued' });
    } finally {
      await prefork.close();
    }
  }, 30_000);

  it('a connection that fails to open is opened again: a send while the server refuses goes through once it is back, queued once; past connectRetry it gives up and says so; close() ends the wait', async () => {
    await using proxy = await TcpProxy.start(databaseUrl());
    const schema = schemaName();
    const url = proxy.url({ password: 'hunter2' });
    const timers: NodeJS.Timeout[] = [];
    onTestFinished(() => timers.forEach(clearTimeout));
    const back = (ms: number) => timers.push(setTimeout(() => void proxy.restore(), ms));
    // Retries enough to outlast 0.7 s whatever the jitter draws (the default's 4 could all fall within it).
    const connectRetry = { retries: 50, maxElapsedMs: 10_000 };
    const prefork = new Client({ connectionString: url, schema, direct: false, connectRetry });
    try {
      // The first call (a connection of its own, which makes the schema), refused for 0.7 s.
      await proxy.refuse();
      back(700);
      const first = await prefork.send('prefork.echo', { n: 1 });
      const rows = await query<{ id: string; payload: unknown }>(`select id::text, payload from "${schema}".tasks`);
      expect(rows).toEqual([{ id: first, payload: { n: 1 } }]);
    } finally {
      await prefork.close();
    }

    // The pool's first connections, refused for 0.7 s: a client whose only call so far went on the application's
    // connection has none open (an idle one cut by an outage fails the query that picks it up, which is not retried).
    // Twenty calls at once, each waiting between attempts: no warning of too many listeners in the application.
    const other = new Client({ connectionString: url, schema, direct: false, connectRetry });
    const app = new pg.Client({ connectionString: databaseUrl() });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    onTestFinished(() => void process.off('warning', onWarning));
    try {
      await app.connect();
      const second = await other.send('prefork.echo', { n: 2 }, { db: app });
      await proxy.refuse();
      back(700);
      const more = await Promise.all(Array.from({ length: 20 }, (_, i) => other.send('prefork.echo', { n: 3 + i })));
      expect(await other.get(second)).toMatchObject({ id: second, task: 'prefork.echo', status: 'queued' });
      const rows = await query<{ id: string }>(`select id::text from "${schema}".tasks where (payload ->> 'n')::int >= 3 order by (payload ->> 'n')::int`);
      expect(rows.map((r) => r.id)).toEqual(more);
      expect(warnings.map((w) => w.name)).toEqual([]);

      // run() that gave up (TIMEOUT) while its connect was being retried: once that connect succeeds, it sends
      // nothing, so running the task again does not make two.
      const late = new Client({ connectionString: url, schema, direct: false, connectRetry });
      try {
        await late.send('prefork.echo', { warm: true }, { db: app }); // migrated; its pool has no connection yet
        const refused = proxy.refuse();
        proxy.cutAll(); // \`other\`'s idle connection, which refuse() would otherwise wait for
        await refused;
        const accepted = proxy.accepted;
        await expect(late.run('prefork.echo', { late: true }, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
        back(0);
        await expect.poll(() => proxy.accepted, { timeout: 5_000 }).toBeGreaterThan(accepted);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await query(`select id from "${schema}".tasks where payload ? 'late'`)).toEqual([]);
      } finally {
        await late.close();
      }
    } finally {
      await app.end();
      await other.close();
    }

    await proxy.refuse();
    const quick = new Client({ connectionString: url, schema: schemaName(), direct: false, connectRetry: { maxElapsedMs: 600 } });
    try {
      const started = Date.now();
      const error = await quick.send('prefork.echo', {}).catch((e: unknown) => e as PreforkError);
      expect(error).toMatchObject({ code: 'DATABASE_UNREACHABLE', cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
      expect((error as Error).message).toMatch(/^cannot use the database at .*: connect ECONNREFUSED .* \(gave up after \d+ attempts in \d+\.\d s/);
      expect((error as Error).message).not.toContain('hunter2');
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await quick.close();
    }

    const patient = new Client({ connectionString: url, schema: schemaName(), direct: false, connectRetry: { retries: 1_000, maxElapsedMs: 60_000 } });
    const pending = patient.send('prefork.echo', {}).catch((e: unknown) => e as PreforkError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const closing = Date.now();
    await patient.close();
    expect(await pending).toMatchObject({ code: 'CLIENT_CLOSED' });
    expect(Date.now() - closing).toBeLessThan(2_000);
  }, 30_000);

  it("send({ db }) on the application's connection, lost: pg's error as it is, which the application's own retry recognises", async () => {
    await using proxy = await TcpProxy.start(databaseUrl());
    const prefork = new Client({ connectionString: databaseUrl(), schema: schemaName(), direct: false });
    const app = new pg.Client({ connectionString: proxy.url() });
    app.on('error', () => {});
    try {
      await app.connect();
      await prefork.send('prefork.echo', {}, { db: app }); // the schema is made, and the app's connection works
      proxy.cutAll();
      const error = await prefork.send('prefork.echo', {}, { db: app }).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(PreforkError);
      expect(classifyDatabaseError(error)).toMatchObject({ transient: true, category: 'connection' });
    } finally {
      await app.end().catch(() => {});
      await prefork.close();
    }
  });

  it('timeoutMs and the signal bound connecting too: a server that accepts and never answers', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const prefork = new Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/test`, schema: schemaName() });
    try {
      const started = Date.now();
      await expect(prefork.run('prefork.echo', {}, { timeoutMs: 500 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      await expect(prefork.result('1', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      await expect(prefork.run('prefork.echo', {}, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await prefork.close();
      silent.close();
    }
  }, 30_000);
});

describe('many supervisors on one database', () => {
  it('two supervisors share 5,000 tasks sent through the client: each runs exactly once, both do work', async () => {
    const schema = schemaName();
    const a = start(schema, ['--workers', '2']);
    const b = start(schema, ['--workers', '2']);
    await Promise.all([a.ready(), b.ready()]);
    const executions = executionLog();
    const prefork = client(schema);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const sent = await prefork.sendMany(Array.from({ length: 1000 }, () => ({ task: 'fixture.recordToFile', payload: { file: executions.file } })));
      ids.push(...sent);
    }
    await waitForFinal(schema, 5000);
    expect(await countByState(schema)).toEqual({ succeeded: 5000 });
    const runs = executions.runs();
    expect(runs.size).toBe(5000);
    expect([...runs.keys()].sort()).toEqual([...ids].sort());
    expect([...runs.values()].filter((n) => n > 1)).toEqual([]);
    const bySupervisor = await query<{ supervisor_id: string; n: number }>(`select supervisor_id, count(*)::int as n from "${schema}".tasks group by 1`);
    expect(bySupervisor).toHaveLength(2);
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout);
    expect(status.supervisors.map((s: { pid: number }) => s.pid).sort()).toEqual([a.pid, b.pid].sort());
    await Promise.all([a.stop(), b.stop()]);
  });

  it('a supervisor killed mid-stream: the other finishes its tasks; none recorded as succeeded twice', async () => {
    const schema = schemaName();
    const { a, b, prefork, executions } = await twoSupervisors(schema);
    await prefork.sendMany(Array.from({ length: 600 }, () => ({ task: 'fixture.recordToFile', payload: { file: executions.file, ms: 5 } })));
    await expect.poll(async () => (await countByState(schema)).succeeded ?? 0).toBeGreaterThan(100);
    a.kill('SIGKILL');
    await a.exited;
    await waitForFinal(schema, 600, 60_000);
    expect(await countByState(schema)).toEqual({ succeeded: 600 });
    expect(executions.runs().size).toBe(600);
    expect(b.events('orphans_recovered').length).toBeGreaterThanOrEqual(1);
    await b.stop();
  });

  it('a frozen supervisor loses its lease: the other takes its tasks, and its late outcomes are fenced out', async () => {
    const schema = schemaName();
    const { a, b, prefork, executions } = await twoSupervisors(schema);
    await prefork.sendMany(Array.from({ length: 400 }, () => ({ task: 'fixture.recordToFile', payload: { file: executions.file, ms: 10 } })));
    await expect.poll(async () => (await countByState(schema)).succeeded ?? 0).toBeGreaterThan(50);
    a.kill('SIGSTOP');
    try {
      await waitForFinal(schema, 400, 60_000);
    } finally {
      a.kill('SIGCONT');
    }
    await a.waitForEvent('lease_lost');
    expect(await countByState(schema)).toEqual({ succeeded: 400 });
    // Every task's outcome was recorded once, by the supervisor that held it when it finished.
    expect(executions.runs().size).toBe(400);
    expect(b.events('orphans_recovered').length).toBeGreaterThanOrEqual(1);
    await Promise.all([a.stop(), b.stop()]);
  });
});
