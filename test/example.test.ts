/** The roadmap example from the README runs as documented, in a database of its own. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { databaseUrl, query } from './support/database.js';
import { runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

useProcessLeakGuard();
const example = (file: string) => fileURLToPath(new URL(`../examples/roadmap/${file}`, import.meta.url));
const dbName = `prefork_example_${process.pid}`;

afterEach(async () => {
  await query(`drop database if exists "${dbName}" with (force)`);
});

it('generates a roadmap: reads and writes through ctx.db in a transaction', async () => {
  await query(`drop database if exists "${dbName}" with (force)`);
  await query(`create database "${dbName}"`);
  const url = new URL(databaseUrl());
  url.pathname = `/${dbName}`;
  const exampleUrl = url.href;
  const db = new pg.Client({ connectionString: exampleUrl });
  await db.connect();
  try {
    // The tables and learner 1, as a user runs it with psql.
    await db.query(await readFile(example('schema.sql'), 'utf8'));
    const sup = SupervisorProcess.start('prefork', ['--workers', '2', '--tasks', example('tasks.js'), '--database-url', exampleUrl]);
    await sup.ready();
    const send = (payload: string) => runCli(['send', 'roadmap.generate', payload, '--wait', '--json', '--database-url', exampleUrl], { schema: 'prefork' });
    const [first, second, missing] = await Promise.all([send('{"learnerId": 1, "thinkMs": 50}'), send('{"learnerId": 1, "thinkMs": 50}'), send('{"learnerId": 2, "thinkMs": 0}')]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    const versions = [JSON.parse(first.stdout).result.version, JSON.parse(second.stdout).result.version].sort();
    expect(versions).toEqual([1, 2]);
    expect(JSON.parse(first.stdout).progress).toEqual({ stage: 'saving', steps: 4 });
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ status: 'failed', attempts: 1, error: { name: 'NonRetryableError', message: 'no learner 2' } });
    const { rows } = await db.query(`select count(*)::int as n from roadmap_steps`);
    expect(rows[0].n).toBe(8);
    await sup.stop();
  } finally {
    await db.end();
  }
});
