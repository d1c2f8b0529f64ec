/** withTransaction over a TaskConnection: what is rerun, what is not, with real conflicts and real cuts. */
import { sql, type Transaction } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withTransaction, type TransactionRetryEvent } from '../src/db/transaction.js';
import { CommitOutcomeUnknownError } from '../src/errors.js';
import { databaseUrl, query, useTestSchema } from './support/database.js';
import { useTaskConnections } from './support/task-connections.js';
import { TcpProxy } from './support/tcp-proxy.js';

const schemaName = useTestSchema();
const connections = useTaskConnections();
let proxy: TcpProxy;
let schema: string;

beforeEach(async () => {
  schema = schemaName();
  await query(`create schema "${schema}"; create table "${schema}".rows (id int primary key, note text)`);
  proxy = await TcpProxy.start(databaseUrl());
});

afterEach(async () => {
  await proxy.close();
});

/** Resolves for everyone once `parties` callers arrived. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++arrived === parties) open();
    return opened;
  };
}

const insert = (trx: Transaction<any>, id: number, note = '') => sql`insert into ${sql.table(`${schema}.rows`)} (id, note) values (${id}, ${note})`.execute(trx);
const rows = () => query<{ id: number; note: string }>(`select id, note from "${schema}".rows order by id`);

describe('retried: the server rolled back, or nothing was committed', () => {
  it('a serialization failure (40001) between two serializable transactions: the loser reruns and succeeds', async () => {
    await query(`insert into "${schema}".rows values (1, 'on call'), (2, 'on call')`);
    const both = barrier(2);
    const retries: TransactionRetryEvent[] = [];
    const goOffCall = (id: number) =>
      withTransaction(
        connections.open().db,
        async (trx, attempt) => {
          const { rows: r } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(`${schema}.rows`)} where note = 'on call'`.execute(trx);
          if (attempt === 1) await both();
          if (r[0]!.n < 2) return 'stayed';
          await sql`update ${sql.table(`${schema}.rows`)} set note = 'off' where id = ${id}`.execute(trx);
          return 'went off call';
        },
        { isolationLevel: 'serializable', onRetry: (e) => retries.push(e) },
      );
    expect((await Promise.all([goOffCall(1), goOffCall(2)])).sort()).toEqual(['stayed', 'went off call']);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ attempt: 1, code: '40001', reason: 'serialization failure' });
    expect((await rows()).filter((r) => r.note === 'on call')).toHaveLength(1);
  });

  it('a deadlock (40P01): the victim reruns and both transfers land', async () => {
    await query(`insert into "${schema}".rows values (1, '0'), (2, '0')`);
    const both = barrier(2);
    const retries: TransactionRetryEvent[] = [];
    const bump = (trx: Transaction<any>, id: number) => sql`update ${sql.table(`${schema}.rows`)} set note = (note::int + 1)::text where id = ${id}`.execute(trx);
    const transfer = (first: number, second: number) =>
      withTransaction(
        connections.open().db,
        async (trx, attempt) => {
          await sql`set local deadlock_timeout = '50ms'`.execute(trx);
          await bump(trx, first);
          if (attempt === 1) await both();
          await bump(trx, second);
        },
        { onRetry: (e) => retries.push(e) },
      );
    await Promise.all([transfer(1, 2), transfer(2, 1)]);
    expect(retries.map((e) => e.code)).toEqual(['40P01']);
    expect(await rows()).toEqual([
      { id: 1, note: '2' },
      { id: 2, note: '2' },
    ]);
  });

  it('the connection cut before commit: reconnects, reruns, commits once', async () => {
    const connection = connections.open({ connectionString: proxy.url() });
    const attempts: number[] = [];
    const result = await withTransaction(connection.db, async (trx, attempt) => {
      attempts.push(attempt);
      await insert(trx, 1, `attempt ${attempt}`);
      if (attempt === 1) {
        proxy.cutAll();
        await insert(trx, 2);
      }
      return attempt;
    });
    expect(result).toBe(2);
    expect(attempts).toEqual([1, 2]);
    expect(connection.connects).toBe(2);
    expect(proxy.accepted).toBe(2);
    expect(await rows()).toEqual([{ id: 1, note: 'attempt 2' }]);
  });

  it('the session terminated by the server (57P01) mid-transaction: reruns on a new connection', async () => {
    const connection = connections.open();
    const result = await withTransaction(connection.db, async (trx, attempt) => {
      await insert(trx, 1);
      if (attempt === 1) await query('select pg_terminate_backend($1)', [connection.backendPid]);
      await insert(trx, 2);
      return attempt;
    });
    expect(result).toBe(2);
    expect((await rows()).map((r) => r.id)).toEqual([1, 2]);
  });
});

describe('not retried', () => {
  it('the connection lost during COMMIT: COMMIT_OUTCOME_UNKNOWN, and here the commit did happen', async () => {
    const connection = connections.open({ connectionString: proxy.url() });
    let runs = 0;
    const outcome = withTransaction(connection.db, async (trx) => {
      runs += 1;
      await insert(trx, 1, 'committed?');
      proxy.cutAfterClientSends('commit');
    });
    const error = await outcome.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CommitOutcomeUnknownError);
    expect(error).toMatchObject({ code: 'COMMIT_OUTCOME_UNKNOWN', retryable: false });
    expect((error as Error).message).toMatch(/^the connection was lost during COMMIT, so the transaction may or may not have been committed; not retried \(.+\)$/);
    expect(runs).toBe(1);
    await expect.poll(rows).toEqual([{ id: 1, note: 'committed?' }]);
  });

  it('a permanent error (23505) is thrown as is after one run, and rolled back', async () => {
    await query(`insert into "${schema}".rows values (1, 'there')`);
    let runs = 0;
    const connection = connections.open();
    await expect(
      withTransaction(connection.db, async (trx) => {
        runs += 1;
        await insert(trx, 2);
        await insert(trx, 1);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(runs).toBe(1);
    expect(await rows()).toEqual([{ id: 1, note: 'there' }]);
    expect((await sql<{ ok: number }>`select 1 as ok`.execute(connection.db)).rows).toEqual([{ ok: 1 }]);
  });

  it('after `retries` reruns the last failure is thrown', async () => {
    let runs = 0;
    const serialization = Object.assign(new Error('could not serialize access'), { code: '40001' });
    await expect(
      withTransaction(
        connections.open().db,
        async () => {
          runs += 1;
          throw serialization;
        },
        { retries: 2, baseDelayMs: 1 },
      ),
    ).rejects.toBe(serialization);
    expect(runs).toBe(3);
  });

  it('an aborted signal stops the reruns', async () => {
    const controller = new AbortController();
    let runs = 0;
    const promise = withTransaction(
      connections.open().db,
      async () => {
        runs += 1;
        controller.abort(new Error('task cancelled'));
        throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
      },
      { signal: controller.signal },
    );
    await expect(promise).rejects.toMatchObject({ code: '40P01' });
    expect(runs).toBe(1);
  });
});
