/** Reaching the server side of a task's connection: by pid and name, or by its whole name alone. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { taskApplicationName, taskApplicationNameIsWhole } from '../src/db/application-name.js';
import { signalBackends } from '../src/queue/terminate-backends.js';
import { admin, databaseUrl, query } from './support/database.js';

afterAll(async () => {
  await (await admin()).end();
});

/** A connection named as a task's, running pg_sleep; resolves with the query's error once it ends. */
async function sleeper(applicationName: string): Promise<{ pid: number; ended: Promise<{ code?: string }> }> {
  const client = new pg.Client({ connectionString: databaseUrl(), application_name: applicationName });
  client.on('error', () => {});
  await client.connect();
  onTestFinished(() => client.end().catch(() => {}));
  const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
  const ended = client.query('select pg_sleep(60)').then(
    () => ({ code: 'finished' }),
    (error: { code?: string }) => ({ code: error.code }),
  );
  await expect.poll(async () => (await query(`select state from pg_stat_activity where pid = $1`, [pid]))[0]?.state).toBe('active');
  return { pid, ended };
}

describe('signalBackends', () => {
  it('cancels a query found by its whole name alone, and leaves a backend of a different name running', async () => {
    const schema = `t_${randomBytes(5).toString('hex')}`;
    const mine = await sleeper(taskApplicationName(schema, 1, '41'));
    const other = await sleeper(taskApplicationName(schema, 1, '411'));
    expect(await signalBackends(await admin(), [{ pid: null, applicationName: taskApplicationName(schema, 1, '41') }], 'cancel')).toBe(1);
    expect(await mine.ended).toEqual({ code: '57014' });
    expect((await query(`select state from pg_stat_activity where pid = $1`, [other.pid]))[0]?.state).toBe('active');
    // With a pid, the name must match too: a recycled pid that now belongs to another session is left alone.
    expect(await signalBackends(await admin(), [{ pid: other.pid, applicationName: taskApplicationName(schema, 2, '411') }], 'terminate')).toBe(0);
    expect(await signalBackends(await admin(), [{ pid: other.pid, applicationName: taskApplicationName(schema, 1, '411') }], 'terminate')).toBe(1);
    expect(await other.ended).toEqual({ code: '57P01' });
  });
});

describe('taskApplicationNameIsWhole', () => {
  it('is false when the server would cut the name short, so that it could name another task', () => {
    const long = 'a'.repeat(48);
    expect(taskApplicationName(long, 12, '123456789')).toHaveLength(63);
    expect(taskApplicationNameIsWhole(long, 12, '123456789')).toBe(false);
    expect(taskApplicationNameIsWhole('prefork', 12, '123456789')).toBe(true);
    // 63 characters exactly: kept whole.
    const exact = 'b'.repeat(63 - 'prefork: w1 t1'.length);
    expect(taskApplicationName(exact, 1, '1')).toHaveLength(63);
    expect(taskApplicationNameIsWhole(exact, 1, '1')).toBe(true);
  });
});
