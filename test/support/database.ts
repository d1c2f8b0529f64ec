/** Each test gets its own schema, dropped when it passes and kept (with its name printed) when it fails. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { afterAll, afterEach, beforeEach, type TestContext } from 'vitest';

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: the global setup should have started an embedded PostgreSQL');
  return url;
}

let adminClient: pg.Client | undefined;

/** One admin connection per test file, for arranging and asserting. */
export async function admin(): Promise<pg.Client> {
  if (!adminClient) {
    adminClient = new pg.Client({ connectionString: databaseUrl(), application_name: 'prefork tests' });
    adminClient.on('error', () => {});
    await adminClient.connect();
  }
  return adminClient;
}

export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
  const { rows } = await (await admin()).query<R>(text, values);
  return rows;
}

/** Creates the queue's schema (as `prefork start` or a first `send` does), for tests that begin with an empty queue. */
export async function createQueue(schema: string): Promise<void> {
  await migrate(await admin(), schema);
}

/** Registers hooks that give every test in the file a fresh schema name; returns a getter. */
export function useTestSchema(): () => string {
  let current = '';
  beforeEach(() => {
    current = `t_${randomBytes(5).toString('hex')}`;
  });
  afterEach(async (ctx: TestContext) => {
    if (ctx.task.result?.state === 'fail') {
      console.error(`kept schema ${current} for the failed test "${ctx.task.name}"`);
      return;
    }
    await query(`drop schema if exists "${current}" cascade`);
  });
  afterAll(async () => {
    await adminClient?.end().catch(() => {});
    adminClient = undefined;
  });
  return () => current;
}

/** The connections prefork opened for tasks of this schema. */
export async function taskConnections(schema: string): Promise<{ pid: number; application_name: string }[]> {
  return query(`select pid, application_name from pg_stat_activity where application_name like $1`, [`prefork:${schema} %`]);
}
