/** Transient or permanent: decided on errors a real server (or the network stack) produced. */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyDatabaseError, isTransientDatabaseError } from '../src/db/error-classification.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/embedded/postgres.js';
import { PreforkError } from '../src/errors.js';
import { databaseUrl, query, useTestSchema } from './support/database.js';

const schemaName = useTestSchema();
const clients: pg.Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
});

async function connect(connectionString = databaseUrl()): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, application_name: 'prefork-test classification' });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

function urlWith(overrides: { database?: string; user?: string }): string {
  const url = new URL(databaseUrl());
  if (overrides.database) url.pathname = `/${overrides.database}`;
  if (overrides.user) url.username = overrides.user;
  return url.href;
}

async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Two sessions, each in a transaction, that pause at a barrier once both reached it. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    if (++arrived === parties) open();
    return opened;
  };
}

describe('transient: the connection failed or died', () => {
  it('connection refused (a closed port)', async () => {
    const error = await failure(connect(`postgres://postgres:pw@127.0.0.1:${await closedPort()}/x`));
    expect(classifyDatabaseError(error)).toEqual({ transient: true, category: 'connection', reason: 'connection refused', code: 'ECONNREFUSED' });
  });

  it('pg_terminate_backend on a live connection: 57P01, then "not queryable"', async () => {
    const victim = await connect();
    const pid = (await victim.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const running = failure(victim.query('select pg_sleep(30)'));
    await expect.poll(async () => (await query(`select 1 from pg_stat_activity where pid = $1 and state = 'active'`, [pid])).length).toBe(1);
    await query('select pg_terminate_backend($1)', [pid]);
    const error = await running;
    expect(classifyDatabaseError(error)).toMatchObject({ transient: true, category: 'connection', code: '57P01' });
    const after = await failure(victim.query('select 1'));
    expect(classifyDatabaseError(after)).toMatchObject({ transient: true, category: 'connection' });
  });
});

describe('transient: rerun the whole transaction', () => {
  it('40001 from two concurrent serializable transactions', async () => {
    const schema = schemaName();
    await query(`create schema "${schema}"; create table "${schema}".doctors (name text, on_call bool)`);
    await query(`insert into "${schema}".doctors values ('alice', true), ('bob', true)`);
    const both = barrier(2);
    const goOffCall = async (name: string) => {
      const c = await connect();
      await c.query('begin isolation level serializable');
      await c.query(`select count(*) from "${schema}".doctors where on_call`);
      await both();
      await c.query(`update "${schema}".doctors set on_call = false where name = $1`, [name]);
      await c.query('commit');
    };
    const results = await Promise.allSettled([goOffCall('alice'), goOffCall('bob')]);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(classifyDatabaseError(rejected[0]!.reason)).toEqual({ transient: true, category: 'serialization', reason: 'serialization failure', code: '40001' });
  });

  it('40P01 from a real deadlock', async () => {
    const schema = schemaName();
    await query(`create schema "${schema}"; create table "${schema}".accounts (id int primary key, balance int)`);
    await query(`insert into "${schema}".accounts values (1, 0), (2, 0)`);
    const both = barrier(2);
    const transfer = async (first: number, second: number) => {
      const c = await connect();
      await c.query(`begin; set local deadlock_timeout = '50ms'`);
      await c.query(`update "${schema}".accounts set balance = balance + 1 where id = $1`, [first]);
      await both();
      await c.query(`update "${schema}".accounts set balance = balance - 1 where id = $1`, [second]);
      await c.query('commit');
    };
    const results = await Promise.allSettled([transfer(1, 2), transfer(2, 1)]);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(classifyDatabaseError(rejected[0]!.reason)).toMatchObject({ transient: true, category: 'serialization', code: '40P01' });
  });
});

describe('permanent', () => {
  it('3D000 unknown database, 28000 unknown role', async () => {
    expect(classifyDatabaseError(await failure(connect(urlWith({ database: 'prefork_no_such_db' }))))).toMatchObject({ transient: false, code: '3D000' });
    expect(classifyDatabaseError(await failure(connect(urlWith({ user: 'prefork_no_such_role' }))))).toMatchObject({ transient: false, code: '28000' });
  });

  it('42601 syntax, 42P01 undefined table, 23505 unique violation, 22012 division by zero', async () => {
    const c = await connect();
    expect(classifyDatabaseError(await failure(c.query('selec 1')))).toMatchObject({ transient: false, category: 'permanent', code: '42601' });
    expect(classifyDatabaseError(await failure(c.query('select * from prefork_no_such_table')))).toMatchObject({ transient: false, code: '42P01' });
    await c.query('create temp table u (id int primary key); insert into u values (1)');
    expect(classifyDatabaseError(await failure(c.query('insert into u values (1)')))).toMatchObject({ transient: false, code: '23505' });
    expect(classifyDatabaseError(await failure(c.query('select 1 / 0')))).toMatchObject({ transient: false, code: '22012' });
  });

  it('57014 statement timeout: a deadline, not retried', async () => {
    const c = await connect();
    await c.query(`set statement_timeout = '50ms'`);
    const error = await failure(c.query('select pg_sleep(5)'));
    expect((error as Error).message).toBe('canceling statement due to statement timeout');
    expect(classifyDatabaseError(error)).toMatchObject({ transient: false, category: 'permanent', code: '57014' });
  });

  it('55P03 lock not available (NOWAIT): a deadline, not retried', async () => {
    const schema = schemaName();
    await query(`create schema "${schema}"; create table "${schema}".t (id int)`);
    const holder = await connect();
    await holder.query(`begin; lock table "${schema}".t`);
    const other = await connect();
    const error = await failure(other.query(`begin; lock table "${schema}".t nowait`));
    expect(classifyDatabaseError(error)).toMatchObject({ transient: false, code: '55P03' });
  });
});

describe('an embedded server with max_connections 3 and no reserved slots', () => {
  let dataDir: string;
  let server: EmbeddedPostgres;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'prefork-classify-'));
    server = await startEmbeddedPostgres({ dataDir, settings: { max_connections: '3', superuser_reserved_connections: '0', fsync: 'off' } });
  });

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('53300 too many connections', async () => {
    for (let i = 0; i < 3; i++) await connect(server.connectionString);
    const error = await failure(connect(server.connectionString));
    expect((error as Error).message).toBe('sorry, too many clients already');
    expect(classifyDatabaseError(error)).toEqual({ transient: true, category: 'unavailable', reason: 'too many connections', code: '53300' });
  });

  it('57P03 cannot connect now: a new session during a smart shutdown', async () => {
    const last = await connect(server.connectionString);
    process.kill(server.pid, 'SIGTERM'); // smart shutdown: waits for `last`, turns new sessions away
    const error = await failure(
      (async () => {
        for (;;) {
          await connect(server.connectionString);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })(),
    );
    expect(classifyDatabaseError(error)).toMatchObject({ transient: true, category: 'unavailable', code: '57P03' });
    await last.end();
  });
});

describe('errors without a server', () => {
  it('pg and socket messages, wrappers, prefork errors, non-errors', () => {
    expect(classifyDatabaseError(new Error('timeout expired'))).toMatchObject({ transient: true, reason: 'connect timeout' });
    expect(classifyDatabaseError(new Error('Connection terminated unexpectedly'))).toMatchObject({ transient: true, category: 'connection' });
    expect(classifyDatabaseError(new Error('Connection terminated'))).toMatchObject({ transient: false });
    expect(classifyDatabaseError(Object.assign(new Error('x'), { code: 'ENOENT', syscall: 'connect' }))).toMatchObject({ transient: true });
    expect(classifyDatabaseError(Object.assign(new Error('x'), { code: 'ENOENT', syscall: 'open' }))).toMatchObject({ transient: false });
    expect(classifyDatabaseError(Object.assign(new Error('x'), { code: 'EAI_AGAIN' }))).toMatchObject({ transient: true });
    expect(classifyDatabaseError(Object.assign(new Error('x'), { code: 'EPERM' }))).toMatchObject({ transient: false, code: 'EPERM' });
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(classifyDatabaseError(new AggregateError([refused]))).toMatchObject({ transient: true, code: 'ECONNREFUSED' });
    expect(classifyDatabaseError(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: '40001' }) }))).toMatchObject({ category: 'serialization' });
    expect(classifyDatabaseError(new PreforkError('DB_CONNECT_FAILED', 'gave up', { cause: refused }))).toMatchObject({ transient: false, code: 'DB_CONNECT_FAILED' });
    expect(isTransientDatabaseError('ECONNREFUSED')).toBe(false);
    expect(isTransientDatabaseError(null)).toBe(false);
  });

  it('ENOTFOUND from the resolver is permanent', async () => {
    const error = await failure(connect('postgres://postgres@prefork-no-such-host.invalid:5432/x'));
    expect(classifyDatabaseError(error)).toMatchObject({ transient: false, code: 'ENOTFOUND', reason: 'host name does not resolve' });
  });
});
