/** The database the benchmark runs against, schema names, and an admin connection for arranging and checking. */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { defer } from './cleanup.js';
import { isAlive } from './proc.js';

export const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** The same database over the server's Unix socket, when it is local and has one; else null. */
export function unixSocketUrl(url = databaseUrl) {
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(u.hostname)) return null;
  const port = u.port || '5432';
  for (const dir of ['/var/run/postgresql', '/tmp']) {
    if (existsSync(`${dir}/.s.PGSQL.${port}`)) {
      const auth = u.username ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '';
      const params = new URLSearchParams(u.search);
      params.delete('host');
      params.delete('sslmode');
      const extra = [...params].map(([k, v]) => `&${k}=${encodeURIComponent(v)}`).join('');
      return `postgres://${auth}${u.pathname}?host=${dir}${port === '5432' ? '' : `&port=${port}`}${extra}`;
    }
  }
  return null;
}

/** Schema names carry the harness pid, so a later run can drop what a killed one left behind. */
export function freshSchema(tag) {
  return `bench_${process.pid}_${tag}_${randomBytes(3).toString('hex')}`;
}

let admin;

export async function adminClient() {
  if (!admin) {
    admin = new pg.Client({ connectionString: databaseUrl, application_name: 'prefork bench' });
    admin.on('error', () => {});
    await admin.connect();
    defer('admin connection', async () => {
      const c = admin;
      admin = undefined;
      await c.end().catch(() => {});
    });
  }
  return admin;
}

export async function query(text, values) {
  return (await (await adminClient()).query(text, values)).rows;
}

export function quoteIdent(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Registers the schema for dropping (now, or on failure); returns the undo function. */
export function dropLater(deferFn, schema) {
  return deferFn(`drop schema ${schema}`, () => dropSchema(schema));
}

export async function dropSchema(schema) {
  // A killed process may leave sessions holding locks on the schema: end them first.
  await query(`select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid() and application_name like $1`, [`%${schema}%`]).catch(() => {});
  await query(`drop schema if exists ${quoteIdent(schema)} cascade`);
}

/** Schemas left by a benchmark whose process is gone (killed before it could clean up). */
export async function dropStaleSchemas() {
  const rows = await query(`select nspname from pg_namespace where nspname like 'bench\\_%'`);
  const stale = rows.map((r) => r.nspname).filter((n) => {
    const m = /^bench_(\d+)_/.exec(n);
    return m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]));
  });
  for (const s of stale) await query(`drop schema if exists ${quoteIdent(s)} cascade`);
  return stale;
}

/** A bench table of one row per W2 task, to check that nothing was lost or doubled. */
export async function createRowsTable(schema) {
  await query(`create schema if not exists ${quoteIdent(schema)}`);
  await query(`create table if not exists ${quoteIdent(schema)}.bench_rows (task_no integer not null, inserted_at timestamptz not null default clock_timestamp())`);
}

export async function checkRows(schema, expected) {
  const [r] = await query(`select count(*)::int as n, count(distinct task_no)::int as distinct_n from ${quoteIdent(schema)}.bench_rows`);
  return { expected, rows: r.n, distinct: r.distinct_n, ok: r.n === expected && r.distinct_n === expected };
}
