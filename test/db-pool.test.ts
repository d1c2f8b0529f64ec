/** The pools of the supervisor, the metrics and the Client: their end waits until the server has let go. */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool, endPool } from '../src/db/pool.js';
import { admin, databaseUrl, query } from './support/database.js';

afterAll(async () => {
  await (await admin()).end();
});

const sessionsNamed = (name: string) => query(`select pid from pg_stat_activity where application_name = $1`, [name]);

describe('endPool', () => {
  it('returns once the server has closed every session of the pool, so a server stopped next finds none', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `prefork pool test ${randomBytes(4).toString('hex')}`;
      const errors: Error[] = [];
      const pool = createPool({ connectionString: databaseUrl(), max: 3, application_name: name }, (error) => errors.push(error));
      // Three sessions at once, then idle in the pool.
      const held = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
      for (const client of held) client.release();
      expect(await sessionsNamed(name)).toHaveLength(3);

      await endPool(pool);
      expect(await sessionsNamed(name)).toEqual([]);
      expect(errors).toEqual([]);
    }
  });

  it('reports a session the server ends while the pool is open, and returns when a pool never connected', async () => {
    const name = `prefork pool test ${randomBytes(4).toString('hex')}`;
    const errors: Error[] = [];
    const pool = createPool({ connectionString: databaseUrl(), max: 1, application_name: name }, (error) => errors.push(error));
    const client = await pool.connect();
    client.release();
    const pid = (await sessionsNamed(name))[0]!.pid;
    await query('select pg_terminate_backend($1)', [pid]);
    await expect.poll(() => errors.map((e) => (e as Error & { code?: string }).code)).toEqual(['57P01']);
    await endPool(pool);

    await endPool(createPool({ connectionString: databaseUrl() }));
  });
});
