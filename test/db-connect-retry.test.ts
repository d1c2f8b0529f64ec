/** Opening a task's connection through a TCP proxy that refuses, stalls and cuts for real. */
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectRetryEvent } from '../src/db/connect-with-retry.js';
import { PreforkError, serializeError } from '../src/errors.js';
import { databaseUrl } from './support/database.js';
import { useTaskConnections } from './support/task-connections.js';
import { TcpProxy } from './support/tcp-proxy.js';

const connections = useTaskConnections();
const password = 'Sup3r-s3cret-pa55word';
let proxy: TcpProxy;

beforeEach(async () => {
  proxy = await TcpProxy.start(databaseUrl());
});

afterEach(async () => {
  await proxy.close();
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

const selectOne = (db: ReturnType<typeof connections.open>['db']) => sql<{ one: number }>`select 1 as one`.execute(db);

describe('connect with retry', () => {
  it('succeeds once a refusing server comes back', async () => {
    await proxy.refuse();
    const retries: ConnectRetryEvent[] = [];
    const connection = connections.open({ connectionString: proxy.url(), connectRetries: 50, connectRetryMaxMs: 20_000, onConnectRetry: (e) => retries.push(e) });
    const query = selectOne(connection.db);
    await expect.poll(() => retries.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await proxy.restore();
    expect((await query).rows).toEqual([{ one: 1 }]);
    expect(retries[0]).toMatchObject({ attempt: 1, reason: 'connection refused', code: 'ECONNREFUSED' });
    expect(connection.connects).toBe(1);
    expect(proxy.accepted).toBe(1);
  });

  it('a permanent error (unknown database) fails at once: one connection attempt, no retry', async () => {
    const retries: ConnectRetryEvent[] = [];
    const connection = connections.open({ connectionString: proxy.url({ database: 'prefork_no_such_db' }), onConnectRetry: (e) => retries.push(e) });
    const started = performance.now();
    const error = await failure(selectOne(connection.db));
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(PreforkError);
    expect(error).toMatchObject({ code: 'DB_CONNECT_FAILED', cause: { code: '3D000' } });
    expect(error.message).toBe(
      `could not connect to PostgreSQL at ${proxy.url({ database: 'prefork_no_such_db' })}: database "prefork_no_such_db" does not exist (3D000, unknown database: not retried)`,
    );
    expect(retries).toEqual([]);
    expect(proxy.accepted).toBe(1);
  });

  it('gives up after its retries with one clear line', async () => {
    await proxy.refuse();
    const connection = connections.open({ connectionString: proxy.url(), connectRetries: 2, connectRetryBaseDelayMs: 10 });
    const error = await failure(selectOne(connection.db));
    expect(error.message).toMatch(
      /^could not connect to PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(ECONNREFUSED, connection refused: gave up after 3 attempts in \d+\.\d s\)$/,
    );
  });

  it('bounds each attempt by the connect timeout and all of them by the budget', async () => {
    proxy.delay(5_000); // the TCP connect succeeds, the server never answers
    const connection = connections.open({ connectionString: proxy.url(), connectTimeoutMs: 150, connectRetries: 50, connectRetryMaxMs: 600, connectRetryBaseDelayMs: 10, connectRetryMaxDelayMs: 20 });
    const started = performance.now();
    const error = await failure(selectOne(connection.db));
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error.message).toMatch(/no answer within \d+ ms \(connect timeout\) \(connect timeout: gave up after \d+ attempts in 0\.\d s: the 600 ms connect budget is spent\)$/);
    expect(proxy.accepted).toBeGreaterThanOrEqual(3);
  });

  it('a slow but answering server is waited for', async () => {
    proxy.delay(300);
    const connection = connections.open({ connectionString: proxy.url(), connectTimeoutMs: 3_000 });
    expect((await selectOne(connection.db)).rows).toEqual([{ one: 1 }]);
  });

  it("stops retrying when the task's signal aborts", async () => {
    await proxy.refuse();
    const controller = new AbortController();
    const connection = connections.open({ connectionString: proxy.url(), connectRetries: 1_000, connectRetryMaxMs: 60_000, signal: controller.signal, onConnectRetry: () => controller.abort(new Error('task cancelled')) });
    const error = await failure(selectOne(connection.db));
    expect(error).toMatchObject({ code: 'DB_CONNECT_ABORTED' });
    expect(error.message).toMatch(/^connecting to PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ was aborted: task cancelled$/);
  });
});

describe('the password never appears in an error', () => {
  const leaks = (error: Error) => JSON.stringify({ ...serializeError(error), cause: serializeError(error.cause) }).includes(password);

  it('refused port, unknown database (trust auth ignores the password), timeout', async () => {
    const url = (o: { database?: string } = {}) => proxy.url({ ...o, password });
    await proxy.refuse();
    const refused = await failure(selectOne(connections.open({ connectionString: url(), connectRetries: 1, connectRetryBaseDelayMs: 5 }).db));
    await proxy.restore();
    const unknown = await failure(selectOne(connections.open({ connectionString: url({ database: 'prefork_no_such_db' }) }).db));
    proxy.delay(5_000);
    const timedOut = await failure(selectOne(connections.open({ connectionString: url(), connectTimeoutMs: 50, connectRetries: 0 }).db));
    for (const error of [refused, unknown, timedOut]) {
      expect(error.message).toContain(':***@127.0.0.1');
      expect(error.message.split('\n')).toHaveLength(1);
      expect(leaks(error), error.message).toBe(false);
    }
  });
});
