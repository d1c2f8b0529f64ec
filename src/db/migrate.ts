/**
 * Versioned migrations, one transaction for all that are pending, serialised by an advisory lock so that two
 * processes migrating at once both succeed: the second finds the work done.
 */
import type pg from 'pg';
import { PreforkError } from '../errors.js';
import { quoteIdent } from './identifiers.js';
import { migrations } from './migrations/index.js';

const latest = migrations.at(-1)?.id ?? 0;

export async function migrate(client: pg.ClientBase, schema: string): Promise<{ applied: number[] }> {
  if ((await currentVersion(client, schema)) === latest) return { applied: [] };
  const q = quoteIdent(schema);
  await client.query('begin');
  try {
    await client.query(`select pg_advisory_xact_lock(hashtext('prefork.migrate'), hashtext($1))`, [schema]);
    await client.query(`create schema if not exists ${q}`);
    await client.query(
      `create table if not exists ${q}.migrations (id integer primary key, name text not null, applied_at timestamptz not null default now())`,
    );
    const { rows } = await client.query<{ id: number }>(`select id from ${q}.migrations`);
    const done = new Set(rows.map((r) => r.id));
    const newest = Math.max(0, ...done);
    if (newest > latest) {
      throw new PreforkError(
        'SCHEMA_TOO_NEW',
        `the database schema ${schema} is at migration ${newest}, newer than this prefork knows (${latest}): upgrade prefork`,
        { exitCode: 3 },
      );
    }
    const applied: number[] = [];
    await client.query(`set local search_path to ${q}, public`);
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await client.query(m.sql);
      await client.query(`insert into ${q}.migrations (id, name) values ($1, $2)`, [m.id, m.name]);
      applied.push(m.id);
    }
    await client.query('commit');
    return { applied };
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  }
}

async function currentVersion(client: pg.ClientBase, schema: string): Promise<number | null> {
  const q = quoteIdent(schema);
  const exists = await client.query<{ found: boolean }>('select to_regclass($1) is not null as found', [`${q}.migrations`]);
  if (!exists.rows[0]?.found) return null;
  const { rows } = await client.query<{ version: number | null }>(`select max(id) as version from ${q}.migrations`);
  return rows[0]?.version ?? null;
}
